#include "examples/embeddings_page.hpp"

#include <png.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "embeddings_template.hpp"  // kEmbeddingsTemplate, generated from examples/embeddings.html
#include "tensor/error.hpp"

namespace semigrad::examples {

namespace {

constexpr std::size_t kShownNeighbours = 10;
constexpr std::string_view kPlaceholder = "/*SEMIGRAD_DATA*/";

}  // namespace

std::string base64(std::string_view bytes) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {  // 3 bytes -> 4 letters of 6 bits each
        const std::uint32_t v = std::uint32_t(std::uint8_t(bytes[i])) << 16 |
                                std::uint32_t(std::uint8_t(bytes[i + 1])) << 8 | std::uint8_t(bytes[i + 2]);
        for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
    }
    if (const std::size_t rest = bytes.size() - i) {  // 1 or 2 bytes left: pad with '='
        std::uint32_t v = std::uint32_t(std::uint8_t(bytes[i])) << 16;
        if (rest == 2) v |= std::uint32_t(std::uint8_t(bytes[i + 1])) << 8;
        out.push_back(kAlphabet[(v >> 18) & 63]);
        out.push_back(kAlphabet[(v >> 12) & 63]);
        out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
        out.push_back('=');
    }
    return out;
}

std::string sprite_png(const PageImages& images, std::size_t n, std::size_t columns) {
    const std::size_t h = images.rows, w = images.cols;
    if (h == 0 || w == 0 || images.pixels.size() != n * h * w || columns == 0)
        throw ShapeError("sprite_png: " + std::to_string(images.pixels.size()) + " pixels for " + std::to_string(n) +
                         " images of " + std::to_string(h) + " x " + std::to_string(w));
    const std::size_t grid_rows = std::max<std::size_t>((n + columns - 1) / columns, 1);
    const std::size_t width = columns * w, height = grid_rows * h;
    // Palette indices 0..15 for the grey levels 0, 17, ..., 255; the nearest level for each pixel.
    std::vector<std::uint8_t> index(width * height, 0);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t y = 0; y < h; ++y)
            for (std::size_t x = 0; x < w; ++x) {
                const unsigned v = images.pixels[(i * h + y) * w + x];
                index[((i / columns) * h + y) * width + (i % columns) * w + x] = std::uint8_t((v + 8) / 17);
            }
    std::uint8_t palette[16 * 3];
    for (int l = 0; l < 16; ++l) palette[3 * l] = palette[3 * l + 1] = palette[3 * l + 2] = std::uint8_t(17 * l);
    // libpng's simplified API writes a colour-mapped image of 16 entries as a 4-bit PNG.
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    image.width = png_uint_32(width);
    image.height = png_uint_32(height);
    image.format = PNG_FORMAT_RGB_COLORMAP;
    image.colormap_entries = 16;
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&image, nullptr, &size, 0, index.data(), 0, palette))
        throw Error(std::string("sprite_png: libpng: ") + image.message);
    std::string bytes(size, '\0');
    if (!png_image_write_to_memory(&image, bytes.data(), &size, 0, index.data(), 0, palette))
        throw Error(std::string("sprite_png: libpng: ") + image.message);
    bytes.resize(size);
    return bytes;
}

std::string embeddings_html(const Tensor& map, std::span<const int> labels, std::span<const std::string> class_names,
                            const PageImages& images, const viz::Neighbours& neighbours, const std::string& title) {
    if (map.ndim() != 2 || map.dim(1) != 2)
        throw ShapeError("embeddings_html: map has shape " + to_string(map.shape()) + ", expected [n, 2]");
    const std::size_t n = map.dim(0);
    if (labels.size() != n || neighbours.n != n || neighbours.k < std::min(kShownNeighbours, n - 1))
        throw ShapeError("embeddings_html: " + std::to_string(n) + " points, " + std::to_string(labels.size()) +
                         " labels, neighbours of " + std::to_string(neighbours.n) + " points (" +
                         std::to_string(neighbours.k) + " each, need 10)");
    for (std::size_t i = 0; i < n; ++i) {
        if (labels[i] < 0 || std::size_t(labels[i]) >= class_names.size())
            throw ValueError("embeddings_html: label " + std::to_string(labels[i]) + " of point " + std::to_string(i) +
                             " has no class name (" + std::to_string(class_names.size()) + " classes)");
        if (!std::isfinite(map[2 * i]) || !std::isfinite(map[2 * i + 1]))
            throw ValueError("embeddings_html: point " + std::to_string(i) + " of the map is not finite");
    }
    const std::size_t k = std::min(kShownNeighbours, neighbours.k), columns = std::size_t(std::ceil(std::sqrt(double(n))));
    nlohmann::ordered_json data;
    data["title"] = title;
    data["classes"] = std::vector<std::string>(class_names.begin(), class_names.end());
    data["labels"] = std::vector<int>(labels.begin(), labels.end());
    // Coordinates to 5 significant digits: far finer than a pixel, a third of the bytes of 9.
    std::vector<double> xs(n), ys(n);
    for (std::size_t i = 0; i < n; ++i) xs[i] = map[2 * i], ys[i] = map[2 * i + 1];
    auto rounded = [](const std::vector<double>& v) {
        nlohmann::json a = nlohmann::json::array();
        char buf[32];
        for (double x : v) {
            std::snprintf(buf, sizeof buf, "%.5g", x);
            a.push_back(std::stod(buf));
        }
        return a;
    };
    data["x"] = rounded(xs);
    data["y"] = rounded(ys);
    data["k"] = k;
    std::vector<std::uint32_t> shown(n * k);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t m = 0; m < k; ++m) shown[i * k + m] = neighbours.index[i * neighbours.k + m];
    data["neighbours"] = shown;
    data["sprite"] = {{"rows", images.rows},
                      {"cols", images.cols},
                      {"per_row", columns},
                      {"png", "data:image/png;base64," + base64(sprite_png(images, n, columns))}};
    // The page is built once, in place: the data's text (7 MB for 10,000 points) is held twice
    // at most (the dump and the page), never in the further copies a replace makes.
    const std::string dumped = data.dump();
    data = nullptr;  // the JSON tree (every number a node) is no longer needed
    const std::size_t at = kEmbeddingsTemplate.find(kPlaceholder);
    if (at == std::string::npos) throw Error("embeddings_html: the page template has no " + std::string(kPlaceholder));
    constexpr std::string_view kHead = "const DATA = ";
    std::string page;
    page.reserve(kEmbeddingsTemplate.size() + kHead.size() + dumped.size() + dumped.size() / 64 + 1);
    page.append(kEmbeddingsTemplate.substr(0, at));
    page.append(kHead);
    // Inside <script>, "</" could end the element early: JSON allows "<\/" for it.
    for (std::size_t p = 0; p < dumped.size(); ++p) {
        page.push_back(dumped[p]);
        if (dumped[p] == '<' && p + 1 < dumped.size() && dumped[p + 1] == '/') page.push_back('\\');
    }
    page.push_back(';');
    page.append(kEmbeddingsTemplate.substr(at + kPlaceholder.size()));
    return page;
}

}  // namespace semigrad::examples
