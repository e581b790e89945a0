/// The one page `tded view` serves: HTML, CSS and JavaScript in one string, nothing loaded from
/// anywhere else (the server's Content-Security-Policy forbids it), so it works offline.
///
/// What the page keeps is bounded: fixed-size typed-array rings for the 30 s strip and the raw
/// dots, and a handful of scalars; nothing grows with the time it stays open.
/// For tests, `#readout` carries `data-state` (`connecting`, `live`, `waiting`, `offline`),
/// `data-azimuth`, `data-confidence`, `data-seq`, `data-updates`, `data-gaps`,
/// `data-daemon-connects` and `data-sources` (the line's tracked sources, `id:azimuth` with one
/// decimal, comma-separated; empty when the line has no `sources`, i.e. `engine.max_sources =
/// 1`). Each tracked source is also drawn on the dial as a numbered marker at its azimuth and
/// listed under `sources`.
public enum ViewPage {
    /// The page.
    public static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tded live view</title>
<style>
  :root { --bg:#11151b; --panel:#1a2029; --fg:#e6e9ee; --dim:#8a93a3; --acc:#4fc3f7; --raw:#ffb74d; --warn:#ef5350; --ok:#66bb6a; }
  * { box-sizing: border-box; }
  body { margin:0; background:var(--bg); color:var(--fg); font:14px/1.35 system-ui, sans-serif; }
  header { display:flex; align-items:center; gap:12px; padding:8px 16px; background:var(--panel); }
  header h1 { font-size:16px; margin:0; font-weight:600; }
  #badge { padding:2px 10px; border-radius:10px; font-weight:600; font-size:12px; letter-spacing:.05em; }
  #badge.live { background:var(--ok); color:#000; } #badge.waiting, #badge.connecting { background:#fdd835; color:#000; }
  #badge.offline { background:var(--warn); color:#000; }
  #sock { color:var(--dim); font-family:ui-monospace, monospace; font-size:12px; }
  main { display:grid; grid-template-columns: 480px 1fr; gap:10px; padding:10px 16px; }
  .panel { background:var(--panel); border-radius:8px; padding:10px; position:relative; }
  #dialbox { height:290px; }
  #wait { position:absolute; inset:0; display:none; align-items:center; justify-content:center; text-align:center;
          background:rgba(17,21,27,.72); font-size:18px; font-weight:600; border-radius:8px; }
  body.waiting #wait, body.offline #wait, body.connecting #wait { display:flex; }
  #deg { font-size:36px; font-weight:700; font-variant-numeric:tabular-nums; }
  #side { color:var(--dim); font-size:14px; margin-left:6px; }
  .row { display:flex; justify-content:space-between; gap:8px; margin:4px 0; font-variant-numeric:tabular-nums; }
  .k { color:var(--dim); }
  #meter { height:12px; background:#2a323e; border-radius:6px; overflow:hidden; margin:4px 0 8px; }
  #meterbar { height:100%; width:0; background:linear-gradient(90deg, var(--ok), #fdd835 75%, var(--warn)); }
  #flags span { display:inline-block; padding:1px 8px; margin:2px 4px 2px 0; border-radius:8px; background:#37474f; font-size:12px; }
  #flags span.bad { background:#8e3b3b; }
  table { border-collapse:collapse; width:100%; table-layout:fixed; font-variant-numeric:tabular-nums; font-size:12px; margin-top:6px; }
  td { padding:1px 4px; white-space:nowrap; overflow:hidden; text-overflow:ellipsis; }
  td.k { color:var(--dim); }
  #stripbox { grid-column: 1 / span 2; }
  canvas { display:block; }
</style>
</head>
<body class="connecting">
<header><h1>tded live view</h1><span id="badge" class="connecting">CONNECTING</span><span id="sock"></span></header>
<main>
  <div class="panel" id="dialbox">
    <canvas id="dial" width="460" height="270" aria-label="azimuth dial"></canvas>
    <div id="wait">waiting for the daemon&hellip;</div>
  </div>
  <div class="panel">
    <div><span id="deg">&ndash;</span><span id="side"></span></div>
    <div id="readout" data-state="connecting" data-azimuth="" data-confidence="" data-seq="" data-updates="0" data-gaps="0" data-daemon-connects="0" data-sources=""></div>
    <div class="row"><span class="k">confidence</span><span id="conf">&ndash;</span></div>
    <div class="row"><span class="k">level</span><span id="level">&ndash;</span></div>
    <div id="meter"><div id="meterbar"></div></div>
    <div class="row"><span class="k">method</span><span id="method">&ndash;</span></div>
    <div class="row"><span class="k">seq / gaps</span><span id="seq">&ndash;</span></div>
    <div class="row"><span class="k">flags</span><span id="flags"></span></div>
    <div class="row"><span class="k">sources</span><span id="sources">&ndash;</span></div>
    <table id="status"><colgroup><col style="width:19%"><col style="width:31%"><col style="width:29%"><col style="width:21%"></colgroup><tbody>
      <tr><td class="k">source</td><td colspan="3" id="s_source">&ndash;</td></tr>
      <tr><td class="k">state</td><td id="s_state">&ndash;</td><td class="k">xruns</td><td id="s_xruns">&ndash;</td></tr>
      <tr><td class="k">uptime</td><td id="s_uptime">&ndash;</td><td class="k">overruns</td><td id="s_overruns">&ndash;</td></tr>
      <tr><td class="k">engine load</td><td id="s_engine_load">&ndash;</td><td class="k">dropped frames</td><td id="s_dropped_frames">&ndash;</td></tr>
      <tr><td class="k">publish</td><td id="s_publish_hz">&ndash;</td><td class="k">clients</td><td id="s_clients">&ndash;</td></tr>
      <tr><td class="k">lost clients</td><td id="s_dropped_clients">&ndash;</td><td class="k">skipped lines</td><td id="s_skipped_lines">&ndash;</td></tr>
    </tbody></table>
  </div>
  <div class="panel" id="stripbox">
    <canvas id="strip" width="900" height="160" aria-label="azimuth over the last 30 seconds"></canvas>
  </div>
</main>
<script>
"use strict";
// ---- bounded state: fixed-size rings, nothing grows while the page stays open ----
const STRIP_N = 4096, STRIP_SECONDS = 30, DOTS_N = 40;
const stripT = new Float64Array(STRIP_N), stripA = new Float32Array(STRIP_N), stripR = new Float32Array(STRIP_N), stripC = new Float32Array(STRIP_N);
let stripHead = 0, stripLen = 0;
const dotA = new Float32Array(DOTS_N); let dotHead = 0, dotLen = 0;
// tracked sources of the last line (engine.max_sources; at most SRC_N shown): id, azimuth, confidence
const SRC_N = 8, srcId = new Int32Array(SRC_N), srcA = new Float32Array(SRC_N), srcC = new Float32Array(SRC_N);
let srcLen = 0, srcShown = null;
const cur = { az: NaN, conf: 0, level: NaN, method: "", flags: "", seq: -1, live: false };
let shownAz = NaN, updates = 0, gaps = 0, missed = 0, connects = 0, dirty = true, lastDraw = 0, flagsShown = null;
const $ = (id) => document.getElementById(id);
const readout = $("readout");

function setState(s) {
  if (readout.dataset.state === s) return;
  readout.dataset.state = s;
  document.body.className = s;
  const b = $("badge"); b.className = s;
  b.textContent = { live: "LIVE", waiting: "WAITING", offline: "VIEWER OFFLINE", connecting: "CONNECTING" }[s];
  $("wait").textContent = s === "waiting" ? "waiting for the daemon\u2026 (it will reconnect by itself)"
                        : s === "offline" ? "the viewer (tded view) is not answering\u2026 retrying" : "connecting\u2026";
  dirty = true;
}

function fmt(x, d) { return Number.isFinite(x) ? x.toFixed(d) : "\u2013"; }

function onLine(l) {
  if (l.v !== 1) { $("flags").textContent = "unknown schema version v=" + l.v; return; }
  const now = performance.now() / 1000;
  if (cur.seq >= 0 && l.seq > cur.seq + 1) { gaps++; missed += l.seq - cur.seq - 1; }
  cur.seq = l.seq;
  const az = l.azimuth_deg == null ? NaN : l.azimuth_deg, raw = l.raw_azimuth_deg == null ? NaN : l.raw_azimuth_deg;
  cur.az = az; cur.conf = l.confidence == null ? 0 : l.confidence; cur.level = l.level_db == null ? NaN : l.level_db;
  stripT[stripHead] = now; stripA[stripHead] = az; stripR[stripHead] = raw; stripC[stripHead] = cur.conf;
  stripHead = (stripHead + 1) % STRIP_N; if (stripLen < STRIP_N) stripLen++;
  const fl = l.flags || [];
  if (!fl.includes("no_votes") && !fl.includes("silent") && Number.isFinite(raw)) {
    dotA[dotHead] = raw; dotHead = (dotHead + 1) % DOTS_N; if (dotLen < DOTS_N) dotLen++;
  }
  const ss = Array.isArray(l.sources) ? l.sources : [];
  srcLen = 0;
  for (const q of ss) {
    if (srcLen >= SRC_N || q == null || !Number.isFinite(q.azimuth_deg)) continue;
    srcId[srcLen] = q.id | 0; srcA[srcLen] = q.azimuth_deg; srcC[srcLen] = Number.isFinite(q.confidence) ? q.confidence : 0; srcLen++;
  }
  let skey = "";
  for (let i = 0; i < srcLen; i++) skey += (i ? "," : "") + srcId[i] + ":" + srcA[i].toFixed(1);
  if (skey !== srcShown) {
    srcShown = skey; readout.dataset.sources = skey;
    let txt = "";
    for (let i = 0; i < srcLen; i++) txt += (i ? "   " : "") + "#" + srcId[i] + " " + (srcA[i] > 0 ? "+" : "") + srcA[i].toFixed(1) + "\u00b0 (" + srcC[i].toFixed(2) + ")";
    $("sources").textContent = srcLen ? txt : "\u2013";
  }
  updates++;
  readout.dataset.azimuth = fmt(az, 2); readout.dataset.confidence = fmt(cur.conf, 3);
  readout.dataset.seq = String(l.seq); readout.dataset.updates = String(updates); readout.dataset.gaps = String(gaps);
  $("deg").textContent = (az > 0 ? "+" : "") + fmt(az, 1) + "\u00b0";
  $("side").textContent = !Number.isFinite(az) ? "" : Math.abs(az) < 3 ? "ahead" : az > 0 ? "toward LEFT mic" : "toward RIGHT mic";
  $("conf").textContent = fmt(cur.conf, 2);
  $("level").textContent = fmt(cur.level, 1) + " dBFS";
  $("meterbar").style.width = (Number.isFinite(cur.level) ? Math.max(0, Math.min(100, (cur.level + 80) / 80 * 100)) : 0) + "%";
  if (l.method !== cur.method) { cur.method = l.method; $("method").textContent = l.method; }
  $("seq").textContent = l.seq + " / " + gaps + (missed ? " (" + missed + " lines)" : "");
  const key = fl.join(",");
  if (key !== flagsShown) {
    flagsShown = key;
    const box = $("flags"); box.textContent = "";
    if (!fl.length) box.textContent = "none";
    for (const f of fl) {
      const s = document.createElement("span"); s.textContent = f;
      if (f === "stale" || f === "silent" || f === "low_confidence" || f === "no_votes") s.className = "bad";
      box.appendChild(s);
    }
  }
  dirty = true;
}

function onStatus(s) {
  for (const k of ["state", "source", "dropped_clients", "xruns", "overruns", "dropped_frames", "clients", "skipped_lines", "publish_hz"]) {
    const el = $("s_" + k); if (el && s[k] !== undefined) { el.textContent = String(s[k]); el.title = String(s[k]); }
  }
  if (s.publish_hz !== undefined) $("s_publish_hz").textContent = s.publish_hz + " Hz";
  if (s.uptime_s !== undefined) $("s_uptime").textContent = fmt(s.uptime_s, 0) + " s";
  if (s.engine_load !== undefined) $("s_engine_load").textContent = fmt(s.engine_load * 100, 1) + " %";
}

// ---- drawing ----
const dial = $("dial"), dc = dial.getContext("2d");
const strip = $("strip"), sc = strip.getContext("2d");
function fitStrip() { const w = Math.max(300, strip.parentElement.clientWidth - 20); if (strip.width !== w) { strip.width = w; dirty = true; } }
window.addEventListener("resize", fitStrip);

function drawDial() {
  const W = dial.width, H = dial.height, cx = W / 2, cy = H - 34, R = 196;
  const P = (azDeg, r) => { const a = azDeg * Math.PI / 180; return [cx - r * Math.sin(a), cy - r * Math.cos(a)]; };
  dc.clearRect(0, 0, W, H);
  dc.lineWidth = 1; dc.strokeStyle = "#3a4452"; dc.fillStyle = "#202833";
  dc.beginPath(); dc.moveTo(cx - R, cy); dc.arc(cx, cy, R, Math.PI, 2 * Math.PI); dc.closePath(); dc.fill(); dc.stroke();
  dc.font = "11px system-ui, sans-serif"; dc.textAlign = "center"; dc.fillStyle = "#8a93a3";
  for (let a = -90; a <= 90; a += 15) {
    const [x1, y1] = P(a, R), [x2, y2] = P(a, R - (a % 45 === 0 ? 12 : 6));
    dc.beginPath(); dc.moveTo(x1, y1); dc.lineTo(x2, y2); dc.stroke();
    if (a % 30 === 0) { const [tx, ty] = P(a, R + 11); dc.fillText((a > 0 ? "+" : "") + a + "\u00b0", tx, ty + 4); }
  }
  // the array: L on the left, R on the right; forward (0 deg) is up
  dc.strokeStyle = "#cfd8dc"; dc.lineWidth = 3;
  dc.beginPath(); dc.moveTo(cx - 52, cy); dc.lineTo(cx + 52, cy); dc.stroke();
  dc.font = "bold 13px system-ui, sans-serif";
  for (const [x, lab, col] of [[cx - 52, "L", "#4fc3f7"], [cx + 52, "R", "#f48fb1"]]) {
    dc.fillStyle = col; dc.beginPath(); dc.arc(x, cy, 8, 0, 2 * Math.PI); dc.fill();
    dc.fillStyle = "#000"; dc.fillText(lab, x, cy + 4.5);
  }
  dc.font = "bold 12px system-ui, sans-serif";
  dc.fillStyle = "#4fc3f7"; dc.textAlign = "left"; dc.fillText("LEFT mic (+90\u00b0)", 4, cy + 24);
  dc.fillStyle = "#f48fb1"; dc.textAlign = "right"; dc.fillText("RIGHT mic (\u221290\u00b0)", W - 4, cy + 24);
  dc.fillStyle = "#8a93a3"; dc.textAlign = "center"; dc.font = "11px system-ui, sans-serif"; dc.fillText("forward 0\u00b0", cx, cy + 24);
  // recent raw estimates: fading dots
  for (let i = 0; i < dotLen; i++) {
    const idx = (dotHead - 1 - i + DOTS_N) % DOTS_N, [x, y] = P(dotA[idx], R - 26);
    dc.globalAlpha = 0.9 * (1 - i / DOTS_N); dc.fillStyle = "#ffb74d";
    dc.beginPath(); dc.arc(x, y, 3.5, 0, 2 * Math.PI); dc.fill();
  }
  dc.globalAlpha = 1;
  // the smoothed needle: width and opacity show confidence
  if (Number.isFinite(shownAz)) {
    const c = Math.max(0, Math.min(1, cur.conf)), [x, y] = P(shownAz, R - 8);
    dc.globalAlpha = readout.dataset.state === "live" ? 0.25 + 0.75 * c : 0.2;
    dc.strokeStyle = "#4fc3f7"; dc.lineWidth = 2 + 10 * c; dc.lineCap = "round";
    dc.beginPath(); dc.moveTo(cx, cy); dc.lineTo(x, y); dc.stroke();
    dc.globalAlpha = 1; dc.lineCap = "butt";
  }
  dc.fillStyle = "#cfd8dc"; dc.beginPath(); dc.arc(cx, cy, 4, 0, 2 * Math.PI); dc.fill();
  // tracked sources: numbered markers just inside the rim, over the needle, opacity by confidence
  dc.font = "bold 11px system-ui, sans-serif"; dc.textAlign = "center";
  for (let i = 0; i < srcLen; i++) {
    const [x, y] = P(srcA[i], R - 44);
    dc.globalAlpha = 0.35 + 0.65 * Math.max(0, Math.min(1, srcC[i]));
    dc.fillStyle = "#ce93d8"; dc.beginPath(); dc.arc(x, y, 9, 0, 2 * Math.PI); dc.fill();
    dc.fillStyle = "#000"; dc.fillText(String(srcId[i]), x, y + 4);
  }
  dc.globalAlpha = 1;
}

function drawStrip(now) {
  const W = strip.width, H = strip.height, L = 46, T = 8, B = H - 18, PW = W - L - 8;
  const X = (t) => L + PW * (1 - (now - t) / STRIP_SECONDS), Y = (a) => T + (90 - a) / 180 * (B - T);
  sc.clearRect(0, 0, W, H);
  sc.font = "11px system-ui, sans-serif"; sc.textAlign = "right"; sc.lineWidth = 1;
  for (const a of [90, 45, 0, -45, -90]) {
    sc.strokeStyle = a === 0 ? "#4a5566" : "#2c3440"; sc.beginPath(); sc.moveTo(L, Y(a)); sc.lineTo(L + PW, Y(a)); sc.stroke();
    sc.fillStyle = "#8a93a3"; sc.fillText((a === 90 ? "L " : a === -90 ? "R " : "") + (a > 0 ? "+" : "") + a + "\u00b0", L - 4, Y(a) + 4);
  }
  sc.textAlign = "center";
  for (let s = 0; s <= STRIP_SECONDS; s += 5) { sc.fillText(s === 0 ? "now" : "\u2212" + s + " s", L + PW * (1 - s / STRIP_SECONDS), H - 4); }
  // raw estimates as faint dots, the smoothed azimuth as a line (broken where updates stopped)
  sc.fillStyle = "rgba(255,183,77,0.55)";
  let prevT = NaN; sc.strokeStyle = "#4fc3f7"; sc.lineWidth = 2; sc.beginPath();
  for (let i = stripLen - 1; i >= 0; i--) {
    const idx = (stripHead - 1 - i + STRIP_N) % STRIP_N, t = stripT[idx];
    if (now - t > STRIP_SECONDS) { continue; }
    const x = X(t);
    if (Number.isFinite(stripR[idx])) sc.fillRect(x - 1, Y(stripR[idx]) - 1, 2, 2);
    const a = stripA[idx];
    if (!Number.isFinite(a)) { prevT = NaN; continue; }
    if (Number.isFinite(prevT) && t - prevT < 1.0) sc.lineTo(x, Y(a)); else sc.moveTo(x, Y(a));
    prevT = t;
  }
  sc.stroke();
}

function frame(ms) {
  requestAnimationFrame(frame);
  if (Number.isFinite(cur.az)) {
    if (!Number.isFinite(shownAz)) shownAz = cur.az;
    const d = cur.az - shownAz; if (Math.abs(d) > 0.05) { shownAz += d * 0.35; dirty = true; } else shownAz = cur.az;
  }
  if (!dirty && ms - lastDraw < 100) return;   // the strip scrolls at 10 frames/s when idle
  dirty = false; lastDraw = ms;
  drawDial(); drawStrip(ms / 1000);
}

// ---- the event stream from tded view ----
function connect() {
  const es = new EventSource("events");
  es.onmessage = (e) => { let l; try { l = JSON.parse(e.data); } catch (_) { return; } onLine(l); };
  es.addEventListener("daemon", (e) => {
    const d = JSON.parse(e.data);
    $("sock").textContent = d.socket;
    if (d.connected) { connects++; readout.dataset.daemonConnects = String(connects); cur.seq = -1; }
    setState(d.connected ? "live" : "waiting");
  });
  es.addEventListener("status", (e) => { try { onStatus(JSON.parse(e.data)); } catch (_) {} });
  es.onerror = () => { if (es.readyState !== EventSource.OPEN) setState("offline"); };
}
fitStrip(); connect(); requestAnimationFrame(frame);
</script>
</body>
</html>
"""#
}
