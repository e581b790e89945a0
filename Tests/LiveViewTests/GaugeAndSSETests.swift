import Foundation
import LiveTDE
import XCTest
@testable import LiveView

final class GaugeAndSSETests: XCTestCase {
    func line(_ az: Double, conf: Double = 0.9, flags: [String] = []) -> StreamLine {
        let f = flags.map { "\"\($0)\"" }.joined(separator: ",")
        let text = "{\"v\":1,\"t\":1.5,\"delay_ms\":0.1,\"azimuth_deg\":\(az),\"confidence\":\(conf),\"level_db\":-28.7,\"method\":\"gcc-phat\",\"seq\":4,\"raw_delay_ms\":0.1,\"raw_azimuth_deg\":\(az),\"votes\":10,\"flags\":[\(f)]}"
        return try! StreamLine.parse(text).get()
    }

    /// Positive azimuth (toward the LEFT mic) is drawn left of centre, negative right of it.
    func testGaugeSideFollowsSignConvention() {
        XCTAssertEqual(Gauge.cell(azimuthDeg: 90), 0)
        XCTAssertEqual(Gauge.cell(azimuthDeg: -90), Gauge.barWidth - 1)
        XCTAssertEqual(Gauge.cell(azimuthDeg: 0), Gauge.barWidth / 2)
        XCTAssertNil(Gauge.cell(azimuthDeg: .nan))
        let left = Gauge.bar(azimuthDeg: 30, confidence: 0.9)
        XCTAssertTrue(left.hasPrefix("L [") && left.hasSuffix("] R"))
        let hash = left.firstIndex(of: "#")!, centre = left.firstIndex(of: "|")!
        XCTAssertLessThan(hash, centre, left)
        let right = Gauge.bar(azimuthDeg: -30, confidence: 0.9)
        XCTAssertGreaterThan(right.firstIndex(of: "#")!, right.firstIndex(of: "|")!, right)
        XCTAssertTrue(Gauge.bar(azimuthDeg: -30, confidence: 0.1).contains("o"), "low confidence marker")
    }

    func testGaugeLineAndPlainLine() {
        let g = Gauge.line(line(30.04, flags: ["holding"]))
        XCTAssertTrue(g.contains("+30.0 deg") && g.contains("conf 0.90") && g.contains("-28.7 dBFS") && g.hasSuffix("holding"), g)
        XCTAssertFalse(g.contains("\n"))
        XCTAssertEqual(Gauge.redraw("x"), "\rx\u{1B}[K")
        XCTAssertEqual(Gauge.plainLine(line(-12.5)), "t=1.50 azimuth=-12.5 confidence=0.90 level_db=-28.7 seq=4 flags=-")
    }

    /// Tracked sources (`engine.max_sources`): each marked on the bar by its id's last digit on
    /// its side (the main mark on top where they coincide), and appended to the plain line; the
    /// gauge line keeps its width.
    func testGaugeShowsTrackedSources() {
        let text = "{\"v\":1,\"t\":2.0,\"delay_ms\":0.1,\"azimuth_deg\":30,\"confidence\":0.9,\"level_db\":-20,\"method\":\"gcc-phat\",\"seq\":7,\"raw_delay_ms\":0.1,\"raw_azimuth_deg\":30,\"votes\":10,\"flags\":[],\"sources\":[{\"id\":1,\"delay_ms\":0.1,\"azimuth_deg\":30.04,\"confidence\":0.62,\"share\":0.6},{\"id\":12,\"delay_ms\":-0.15,\"azimuth_deg\":-40,\"confidence\":0.31,\"share\":0.3}]}"
        let l = try! StreamLine.parse(text).get()
        let bar = Gauge.bar(azimuthDeg: l.azimuthDeg, confidence: l.confidence, sources: l.sources)
        let centre = bar.firstIndex(of: "|")!
        XCTAssertNil(bar.firstIndex(of: "1"), "source 1 sits under the main mark: \(bar)")
        XCTAssertLessThan(bar.firstIndex(of: "#")!, centre, bar)
        XCTAssertGreaterThan(try XCTUnwrap(bar.firstIndex(of: "2"), bar), centre, "source 12 (last digit 2) right of centre: \(bar)")
        XCTAssertEqual(bar.distance(from: bar.firstIndex(of: "[")!, to: bar.firstIndex(of: "2")!) - 1, Gauge.cell(azimuthDeg: -40))
        let g = Gauge.line(l)
        XCTAssertTrue(g.hasPrefix(bar) && g.hasSuffix("-20.0 dBFS"), g)
        var alone = l
        alone.sources = []
        XCTAssertEqual(Gauge.line(alone).count, g.count, "sources must not lengthen the line redrawn in place")
        XCTAssertEqual(Gauge.plainLine(l), "t=2.00 azimuth=+30.0 confidence=0.90 level_db=-20.0 seq=7 flags=- sources=1:+30.0:0.62,12:-40.0:0.31")
        XCTAssertFalse(Gauge.plainLine(line(30)).contains("sources"))
    }

    /// Newlines in the payload cannot end an event early or inject fields.
    func testSSEFraming() {
        XCTAssertEqual(SSE.event(data: "{\"a\":1}"), "data: {\"a\":1}\n\n")
        XCTAssertEqual(SSE.event("status", data: "x"), "event: status\ndata: x\n\n")
        XCTAssertEqual(SSE.event(data: "a\nevent: evil\r\nb"), "data: a\ndata: event: evil\ndata: b\n\n")
        XCTAssertEqual(SSE.event("a\nb", data: ""), "event: ab\ndata: \n\n")
    }

    func testListenAddress() {
        XCTAssertEqual(ListenAddress("127.0.0.1:8080"), ListenAddress(host: "127.0.0.1", port: 8080))
        XCTAssertEqual(ListenAddress("8081"), ListenAddress(host: "127.0.0.1", port: 8081))
        XCTAssertEqual(ListenAddress("[::1]:0"), ListenAddress(host: "::1", port: 0))
        XCTAssertEqual(ListenAddress("localhost:1"), ListenAddress(host: "localhost", port: 1))
        for bad in ["", "host:", ":80", "1.2.3.4:70000", "::1:80", "[::1]80", "a:b"] { XCTAssertNil(ListenAddress(bad), bad) }
        XCTAssertTrue(ListenAddress("127.0.0.1:1")!.isLoopback)
        XCTAssertFalse(ListenAddress("0.0.0.0:1")!.isLoopback)
        XCTAssertEqual(ListenAddress(host: "::1", port: 5).description, "[::1]:5")
    }

    /// The page is self-contained: nothing is loaded from another origin.
    func testPageHasNoExternalReferences() {
        let html = ViewPage.html
        for s in ["http://", "https://", "//cdn", "src=\"", "@import", "<link"] {
            XCTAssertFalse(html.contains(s), "page refers to something external: \(s)")
        }
        for id in ["dial", "strip", "readout", "meterbar", "flags", "s_xruns", "s_overruns", "s_clients"] {
            XCTAssertTrue(html.contains("id=\"\(id)\""), id)
        }
        XCTAssertTrue(html.contains("LEFT mic") && html.contains("RIGHT mic"))
    }
}
