// The one family of exceptions semigrad throws. Library code never prints or exits: it throws
// one of these with a message that names the operation, the shapes, the file or the argument,
// and programs catch `semigrad::Error` at `main`.
#pragma once

#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>

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

// Text read from a file, safe to quote in a message: a corrupt name must not send control
// bytes to the user's terminal. Bytes outside printable ASCII become \xNN; text longer than
// `limit` bytes is cut and ends in "...".
inline std::string printable(std::string_view text, std::size_t limit = 200) {
    std::string out;
    for (std::size_t i = 0; i < text.size() && i < limit; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    if (text.size() > limit) out += "...";
    return out;
}

}  // namespace semigrad
