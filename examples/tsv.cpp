#include "examples/tsv.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tensor/error.hpp"

namespace semigrad::examples {

namespace {

std::string read_whole(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(path + ": cannot open for reading");
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw IoError(path + ": read failed");
    return text.str();
}

// The lines of `text` without their '\n' (a last line without one counts too).
std::vector<std::string_view> lines_of(const std::string& text) {
    std::vector<std::string_view> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        lines.emplace_back(text.data() + start, end - start);
        start = end + 1;
    }
    return lines;
}

std::string where(const std::string& path, std::size_t line) { return path + ":" + std::to_string(line + 1); }

}  // namespace

Tensor read_tsv_matrix(const std::string& path) {
    const std::string text = read_whole(path);
    const std::vector<std::string_view> lines = lines_of(text);
    if (lines.empty()) throw FormatError(path + ": empty file, expected one tab-separated row per line");
    std::vector<float> values;
    std::size_t columns = 0;
    for (std::size_t l = 0; l < lines.size(); ++l) {
        const std::string line(lines[l]);  // strtof needs a terminated string
        std::size_t fields = 0;
        const char* p = line.c_str();
        while (true) {
            char* end = nullptr;
            errno = 0;
            const float v = std::strtof(p, &end);
            if (end == p || !std::isfinite(v))  // overflow gives inf; underflow (denormals) is fine
                throw FormatError(where(path, l) + ": field " + std::to_string(fields + 1) +
                                  " is not a finite number");
            values.push_back(v);
            ++fields;
            if (*end == '\t') {
                p = end + 1;
            } else if (*end == '\0' || (*end == '\r' && end[1] == '\0')) {
                break;
            } else {
                throw FormatError(where(path, l) + ": unexpected character after field " + std::to_string(fields) +
                                  " (fields are numbers separated by tabs)");
            }
        }
        if (l == 0) columns = fields;
        if (fields != columns)
            throw FormatError(where(path, l) + ": " + std::to_string(fields) + " fields, but the first line has " +
                              std::to_string(columns));
    }
    Tensor m({lines.size(), columns});
    std::copy(values.begin(), values.end(), m.data());
    return m;
}

std::vector<int> read_labels(const std::string& path, std::size_t count) {
    const std::string text = read_whole(path);
    const std::vector<std::string_view> lines = lines_of(text);  // views into text
    if (lines.size() != count)
        throw FormatError(path + ": " + std::to_string(lines.size()) + " lines, expected " + std::to_string(count) +
                          " (one label per vector)");
    std::vector<int> labels;
    for (std::size_t l = 0; l < lines.size(); ++l) {
        std::string line(lines[l]);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        char* end = nullptr;
        errno = 0;
        const long v = std::strtol(line.c_str(), &end, 10);
        if (line.empty() || *end != '\0' || errno == ERANGE || v < 0 || v > 1'000'000)
            throw FormatError(where(path, l) + ": '" + line + "' is not a label (an integer from 0 to 1000000)");
        labels.push_back(int(v));
    }
    return labels;
}

std::string projection_tsv(const Tensor& map) {
    check_rank("projection_tsv", "map", map, 2);
    if (map.dim(1) != 2) throw ShapeError("projection_tsv: map has shape " + to_string(map.shape()) + ", expected [n, 2]");
    std::string text;
    char buf[64];
    for (std::size_t i = 0; i < map.dim(0); ++i) {
        const int len = std::snprintf(buf, sizeof buf, "%.9g\t%.9g\n", double(map[2 * i]), double(map[2 * i + 1]));
        text.append(buf, std::size_t(len));
    }
    return text;
}

}  // namespace semigrad::examples
