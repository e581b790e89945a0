import Foundation
import XCTest

/// `make install` (issue 15): `scripts/test-install.sh` installs the binary under test into a
/// temporary DESTDIR with a non-default PREFIX and checks the tree, the units' paths, that the
/// installed binary finds the installed model from outside the repository, that a second install
/// keeps an edited config and that uninstall removes the rest.
final class InstallTests: XCTestCase {
    func testMakeInstallIntoDestdirGivesAWorkingTree() throws {
        for tool in ["/usr/bin/make", "/usr/bin/sox"] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw XCTSkip("\(tool) is not installed (scripts/install-deps.sh installs it)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [E2E.repoRoot.appendingPathComponent("scripts/test-install.sh").path]
        var env = ProcessInfo.processInfo.environment
        env["TDED_BIN"] = E2E.binary
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("test-install: ok"), text)
    }
}
