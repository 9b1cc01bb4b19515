// The Embedding Projector's two files, exactly as the tutorial writes them:
//   vecs.tsv  one embedding per line, tab-separated, np.savetxt's default format "%.18e";
//   meta.tsv  one label per line, no header (single-column metadata has none).
// Both are written atomically.
#pragma once

#include <span>
#include <string>

#include "tensor/tensor.hpp"

namespace semigrad::examples {

void write_vecs_tsv(const std::string& path, const Tensor& embeddings /*[N,D]*/);
void write_meta_tsv(const std::string& path, std::span<const int> labels);

}  // namespace semigrad::examples
