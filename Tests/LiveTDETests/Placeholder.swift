import XCTest
final class LiveTDETestsPlaceholder: XCTestCase { func testPlaceholder() {} }
