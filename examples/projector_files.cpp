#include "examples/projector_files.hpp"

#include <cstdio>

#include "tensor/atomic_file.hpp"

namespace semigrad::examples {

void write_vecs_tsv(const std::string& path, const Tensor& embeddings) {
    check_rank("write_vecs_tsv", "embeddings", embeddings, 2);
    const std::size_t N = embeddings.dim(0), D = embeddings.dim(1);
    // Streamed a row at a time: the whole text of 10,000 x 256 floats is 64 MB, which held at
    // once was the largest single allocation of a Fashion-MNIST run.
    write_file_atomically(path, [&](std::ostream& out) {
        std::string line;
        char buf[64];
        for (std::size_t n = 0; n < N; ++n) {
            line.clear();
            for (std::size_t d = 0; d < D; ++d) {
                // numpy formats each float32 as a Python float (double) with "%.18e".
                const int len = std::snprintf(buf, sizeof buf, "%.18e",
                                              static_cast<double>(embeddings[n * D + d]));
                line.append(buf, static_cast<std::size_t>(len));
                line.push_back(d + 1 < D ? '\t' : '\n');
            }
            out << line;
        }
    });
}

void write_meta_tsv(const std::string& path, std::span<const int> labels) {
    std::string text;
    for (int label : labels) text += std::to_string(label) + '\n';
    write_file_atomically(path, text);
}

}  // namespace semigrad::examples
