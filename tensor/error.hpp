// The one family of exceptions semigrad throws. Library code never prints or exits: it throws
// one of these with a message that names the operation, the shapes, the file or the argument,
// and programs catch `semigrad::Error` at `main`.
#pragma once

#include <stdexcept>
#include <string>

namespace semigrad {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Operands of the wrong rank or size: "conv2d: input [2,3,8,8] has 3 channels, weight [4,1,2,2] expects 1".
struct ShapeError : Error {
    using Error::Error;
};

// A bad argument value (a negative rate, a zero stride, an unknown name).
struct ValueError : Error {
    using Error::Error;
};

// A file that cannot be opened, read or written.
struct IoError : Error {
    using Error::Error;
};

// A file that opens but whose contents are malformed (bad magic, truncated, checksum mismatch).
struct FormatError : Error {
    using Error::Error;
};

}  // namespace semigrad
