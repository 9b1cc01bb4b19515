#include "examples/projector_files.hpp"

#include <cstdio>

#include "tensor/atomic_file.hpp"

namespace semigrad::examples {

void write_vecs_tsv(const std::string& path, const Tensor& embeddings) {
    check_rank("write_vecs_tsv", "embeddings", embeddings, 2);
    const std::size_t N = embeddings.dim(0), D = embeddings.dim(1);
    std::string text;
    text.reserve(N * D * 26);
    char buf[64];
    for (std::size_t n = 0; n < N; ++n) {
        for (std::size_t d = 0; d < D; ++d) {
            // numpy formats each float32 as a Python float (double) with "%.18e".
            const int len = std::snprintf(buf, sizeof buf, "%.18e",
                                          static_cast<double>(embeddings[n * D + d]));
            text.append(buf, static_cast<std::size_t>(len));
            text.push_back(d + 1 < D ? '\t' : '\n');
        }
    }
    write_file_atomically(path, text);
}

void write_meta_tsv(const std::string& path, std::span<const int> labels) {
    std::string text;
    for (int label : labels) text += std::to_string(label) + '\n';
    write_file_atomically(path, text);
}

}  // namespace semigrad::examples
