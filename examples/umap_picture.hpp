// The trainer's picture of its test embeddings, made with UMAP as the tutorial's Embedding
// Projector would: every test point mapped to 2-D, and the three files a reader looks at,
//   projection.tsv    the map, one "x<TAB>y" line per line of vecs.tsv;
//   embeddings.png    the map drawn, one colour per class;
//   embeddings.html   the map to explore (examples/embeddings_page.hpp).
// It also measures the map: leave-one-out 10-NN class accuracy in 2-D beside the same in the
// embedding space, so a reader sees how much of the classes the picture keeps.
#pragma once

#include <filesystem>
#include <span>
#include <string>

#include "examples/embeddings_page.hpp"
#include "tensor/tensor.hpp"

namespace semigrad::examples {

struct UmapPicture {
    double seconds = 0;            // neighbours + UMAP
    double knn10_accuracy_2d = 0;  // in the map
    double knn10_accuracy_embedding = 0;
};

// Maps `embeddings` [n, D] and writes the three files into `out` (each atomically). `title`
// heads the PNG and the page.
UmapPicture write_umap_picture(const std::filesystem::path& out, const std::string& title, const Tensor& embeddings,
                               std::span<const int> labels, std::span<const std::string> class_names,
                               const PageImages& images, std::uint64_t seed);

}  // namespace semigrad::examples
