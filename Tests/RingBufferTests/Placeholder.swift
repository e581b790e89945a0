import XCTest
final class RingBufferTestsPlaceholder: XCTestCase { func testPlaceholder() {} }
