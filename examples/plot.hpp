// A labelled 2-D scatter plot written as a PNG: the picture of an embedding that the tutorial
// gets from TensorBoard's Embedding Projector. One colour per class, a legend, a title, equal
// scales on both axes (t-SNE distances mean the same in every direction, so no axis is
// stretched and no ticks are drawn: the coordinates themselves carry no meaning).
//
// It rasterises into an RGB buffer itself (anti-aliased discs, a built-in 8x8 bitmap font) and
// only uses libpng to encode. It is not a plotting library: no axes, lines or other chart kinds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "tensor/tensor.hpp"

namespace semigrad::viz {

struct Rgb {
    std::uint8_t r, g, b;
    bool operator==(const Rgb&) const = default;
};

// The colour of class k: Tableau 10 (matplotlib's "tab10", D3's category10), repeating after 10.
Rgb class_colour(std::size_t k);

struct ScatterOptions {
    int width = 900, height = 900;
    std::string title = "";  // initialised, so designated initialisers may omit it under -Wextra
    // Disc radius in pixels; 0 picks one from the plot size (about 2.7 px at 900 x 900).
    float point_radius = 0;
    // Opacity of each disc, so that dense regions read darker than single points.
    float point_alpha = 0.8f;
};

// Draws points [n, 2], point i in the colour of class labels[i], with a legend entry (swatch
// and class_names[k]) per class, and writes `path` atomically (a temporary file in the same
// folder, renamed over it). Throws ShapeError unless points is [n, 2] with labels.size() == n;
// ValueError for a label outside [0, class_names.size()), no class names, non-finite points, an
// image smaller than 200 x 200 or larger than 16384 x 16384, a negative radius or an alpha
// outside (0, 1]; IoError naming the file when it cannot be written.
void write_scatter_png(const std::string& path, const Tensor& points, std::span<const int> labels,
                       std::span<const std::string> class_names, const ScatterOptions& options = {});

}  // namespace semigrad::viz
