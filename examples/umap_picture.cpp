#include "examples/umap_picture.hpp"

#include <chrono>

#include "examples/plot.hpp"
#include "examples/tsv.hpp"
#include "examples/umap.hpp"
#include "tensor/atomic_file.hpp"

namespace semigrad::examples {

UmapPicture write_umap_picture(const std::filesystem::path& out, const std::string& title, const Tensor& embeddings,
                               std::span<const int> labels, std::span<const std::string> class_names,
                               const PageImages& images, std::uint64_t seed) {
    const viz::UmapOptions options{.seed = seed};
    UmapPicture result;
    const auto start = std::chrono::steady_clock::now();
    // One neighbour search serves UMAP's graph (n_neighbors - 1 = 14 others), the page's
    // 10 neighbours and the 10-NN accuracy in the embedding space.
    const viz::Neighbours neighbours = viz::nearest_neighbours(embeddings, options.n_neighbors - 1);
    const Tensor map = viz::umap(embeddings, neighbours, options);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.knn10_accuracy_embedding = viz::knn_class_accuracy(neighbours, labels, 10);
    result.knn10_accuracy_2d = viz::knn_class_accuracy(viz::nearest_neighbours(map, 10), labels);

    write_file_atomically((out / "projection.tsv").string(), projection_tsv(map));
    viz::write_scatter_png((out / "embeddings.png").string(), map, labels, class_names, {.title = title});
    write_file_atomically((out / "embeddings.html").string(),
                          embeddings_html(map, labels, class_names, images, neighbours, title));
    return result;
}

}  // namespace semigrad::examples
