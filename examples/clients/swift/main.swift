// tded-example-client: read tded's socket with the project's own types.
//
//   swift build --product tded-example-client
//   .build/debug/tded-example-client --socket /run/tded.sock [--count N]
//
// Reconnects when the daemon restarts (StreamSubscriber), decodes each line as a schema-1
// StreamLine (a line with another `v` stops the client with exit status 3), and reports `seq`
// gaps (SeqGapCounter). Output, one line each (the Python client prints the same):
//   connected PATH | update seq=.. t=.. azimuth=.. confidence=.. flags=.. | gap: N lines missed before seq=..
//   disconnected | summary: updates=.. gaps=.. missed=.. reconnects=..
import Foundation
import LiveTDE

var socketPath = "/run/tded.sock"
var count = 0
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--socket": socketPath = args.popFirst() ?? socketPath
    case "--count": count = Int(args.popFirst() ?? "") ?? 0
    default:
        FileHandle.standardError.write("usage: tded-example-client [--socket PATH] [--count N]\n".data(using: .utf8)!)
        exit(64)
    }
}
setvbuf(stdout, nil, _IOLBF, 0)
signal(SIGPIPE, SIG_IGN)

let subscriber = StreamSubscriber(path: socketPath)

var seqs = SeqGapCounter()
var updates = 0, connects = 0, status: Int32 = 0
var wasWaiting = false
subscriber.run { event in
    switch event {
    case .connected:
        connects += 1
        wasWaiting = false
        seqs.reset()  // a new connection starts a new run of seq
        print("connected \(socketPath)")
    case .disconnected(let was):
        if was { print("disconnected") } else if !wasWaiting { print("waiting for \(socketPath)") }
        wasWaiting = !was
    case .line(let text):
        switch StreamLine.parse(text) {
        case .success(let l):
            let missed = seqs.record(l.seq)
            if missed > 0 { print("gap: \(missed) lines missed before seq=\(l.seq)") }
            updates += 1
            print("update seq=\(l.seq) t=\(String(format: "%.3f", l.t)) azimuth=\(String(format: "%+.2f", l.azimuthDeg)) confidence=\(String(format: "%.3f", l.confidence)) flags=\(l.flags.isEmpty ? "-" : l.flags.joined(separator: ","))")
            if count > 0 && updates >= count { return false }
        case .failure(.unknownVersion(let v)):
            FileHandle.standardError.write("unknown schema version v=\(v) (this client knows v=\(StreamLine.schemaVersion)); stopping\n".data(using: .utf8)!)
            status = 3
            return false
        case .failure(let e):
            FileHandle.standardError.write("skipping a line: \(e)\n".data(using: .utf8)!)
        }
    }
    return true
}
print("summary: updates=\(updates) gaps=\(seqs.gaps) missed=\(seqs.missed) reconnects=\(max(0, connects - 1))")
exit(status)
