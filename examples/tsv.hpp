// Tab-separated text files of the Embedding Projector's kind, read back and written:
//   a matrix   one row per line, numbers separated by tabs (vecs.tsv, projection.tsv);
//   labels     one integer per line (meta.tsv).
// Readers check everything (a number per field, the same count on every line, the expected
// number of lines) and name the file and line of the first problem; they are for files of a
// few tens of MB, read whole. Not a general CSV library: no quoting, no headers.
#pragma once

#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace semigrad::examples {

// The matrix [rows, columns] in `path`. Throws IoError when the file cannot be read;
// FormatError naming path:line for an empty file, a field that is not a finite number, or a
// line whose field count differs from the first line's.
Tensor read_tsv_matrix(const std::string& path);

// The `count` integer labels in `path`, one per line. Throws IoError or FormatError (path:line)
// for anything else, including a different number of lines.
std::vector<int> read_labels(const std::string& path, std::size_t count);

// A 2-D map [n, 2] as text: "x\ty\n" per point, each float printed with 9 significant digits
// (enough to read back the same float).
std::string projection_tsv(const Tensor& map);

}  // namespace semigrad::examples
