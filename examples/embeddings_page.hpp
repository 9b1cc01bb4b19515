// out/embeddings.html: one self-contained page to explore the map of the test embeddings
// offline, as one would in the Embedding Projector. The page's HTML, CSS and JavaScript are
// examples/embeddings.html (a template the build embeds in the program); this file fills in one
// run's data: map coordinates, labels and class names, each point's nearest neighbours in the
// embedding space, and a sprite of the test images as a base64 PNG.
//
// The sprite's pixels are quantised to 16 grey levels (a 4-bit PNG): the page shows 28 x 28
// thumbnails, where 16 levels look the same as 256, and the page for 10,000 Fashion-MNIST
// images shrinks by about half.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "examples/nearest_neighbours.hpp"
#include "tensor/tensor.hpp"

namespace semigrad::examples {

struct PageImages {
    std::span<const std::uint8_t> pixels;  // n images of rows x cols, row-major, 0 = black
    std::size_t rows = 0, cols = 0;
};

// The page for map [n, 2] of n points with labels in [0, class_names.size()), their images
// and their neighbours (at least 10 per point; the first 10 are shown). Throws ShapeError or
// ValueError when these disagree in n, a label is out of range, or a coordinate is not finite.
std::string embeddings_html(const Tensor& map, std::span<const int> labels, std::span<const std::string> class_names,
                            const PageImages& images, const viz::Neighbours& neighbours, const std::string& title);

// The sprite alone: the n images in a grid of `columns` images per row, as PNG bytes.
std::string sprite_png(const PageImages& images, std::size_t n, std::size_t columns);

// RFC 4648 base64 (with padding), for the PNG's data: URL.
std::string base64(std::string_view bytes);

}  // namespace semigrad::examples
