import XCTest
final class tdedTestsPlaceholder: XCTestCase { func testPlaceholder() {} }
