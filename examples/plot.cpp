// Scatter plot -> PNG. The picture is rasterised here into an RGB buffer (row-major, 3 bytes a
// pixel, y down): anti-aliased discs blended over white, 1-pixel frames, and text from the 8x8
// bitmap font below scaled by whole pixels so that it stays crisp. libpng's simplified API
// (png_image, libpng >= 1.6) encodes the buffer in memory and write_file_atomically puts it on
// disk, so a failed or interrupted write never leaves a half-written image.
//
// Layout, outside in: a margin, the title centred on top, the plot square(ish) on the left, the
// legend box on the right, top-aligned with the plot.
#include "examples/plot.hpp"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "tensor/atomic_file.hpp"
#include "tensor/error.hpp"

namespace semigrad::viz {

namespace {

// The printable ASCII glyphs U+0020..U+007E of font8x8_basic by Daniel Hepper
// (https://github.com/dhepper/font8x8, public domain), itself taken from Marcel Sondaar's
// font8_8.asm, which reproduces IBM's public-domain VGA 8x8 font. One byte per row, top row
// first; bit 0 is the leftmost pixel. Glyphs are 7 pixels wide at most, so an 8-pixel advance
// leaves a 1-pixel gap between letters.
constexpr std::uint8_t kFont[95][8] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // U+0020 (space)
    {0x18, 0x3C, 0x3C, 0x18, 0x18, 0x00, 0x18, 0x00},  // U+0021 (!)
    {0x36, 0x36, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // U+0022 (")
    {0x36, 0x36, 0x7F, 0x36, 0x7F, 0x36, 0x36, 0x00},  // U+0023 (#)
    {0x0C, 0x3E, 0x03, 0x1E, 0x30, 0x1F, 0x0C, 0x00},  // U+0024 ($)
    {0x00, 0x63, 0x33, 0x18, 0x0C, 0x66, 0x63, 0x00},  // U+0025 (%)
    {0x1C, 0x36, 0x1C, 0x6E, 0x3B, 0x33, 0x6E, 0x00},  // U+0026 (&)
    {0x06, 0x06, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00},  // U+0027 (')
    {0x18, 0x0C, 0x06, 0x06, 0x06, 0x0C, 0x18, 0x00},  // U+0028 (()
    {0x06, 0x0C, 0x18, 0x18, 0x18, 0x0C, 0x06, 0x00},  // U+0029 ())
    {0x00, 0x66, 0x3C, 0xFF, 0x3C, 0x66, 0x00, 0x00},  // U+002A (*)
    {0x00, 0x0C, 0x0C, 0x3F, 0x0C, 0x0C, 0x00, 0x00},  // U+002B (+)
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C, 0x06},  // U+002C (,)
    {0x00, 0x00, 0x00, 0x3F, 0x00, 0x00, 0x00, 0x00},  // U+002D (-)
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C, 0x00},  // U+002E (.)
    {0x60, 0x30, 0x18, 0x0C, 0x06, 0x03, 0x01, 0x00},  // U+002F (/)
    {0x3E, 0x63, 0x73, 0x7B, 0x6F, 0x67, 0x3E, 0x00},  // U+0030 (0)
    {0x0C, 0x0E, 0x0C, 0x0C, 0x0C, 0x0C, 0x3F, 0x00},  // U+0031 (1)
    {0x1E, 0x33, 0x30, 0x1C, 0x06, 0x33, 0x3F, 0x00},  // U+0032 (2)
    {0x1E, 0x33, 0x30, 0x1C, 0x30, 0x33, 0x1E, 0x00},  // U+0033 (3)
    {0x38, 0x3C, 0x36, 0x33, 0x7F, 0x30, 0x78, 0x00},  // U+0034 (4)
    {0x3F, 0x03, 0x1F, 0x30, 0x30, 0x33, 0x1E, 0x00},  // U+0035 (5)
    {0x1C, 0x06, 0x03, 0x1F, 0x33, 0x33, 0x1E, 0x00},  // U+0036 (6)
    {0x3F, 0x33, 0x30, 0x18, 0x0C, 0x0C, 0x0C, 0x00},  // U+0037 (7)
    {0x1E, 0x33, 0x33, 0x1E, 0x33, 0x33, 0x1E, 0x00},  // U+0038 (8)
    {0x1E, 0x33, 0x33, 0x3E, 0x30, 0x18, 0x0E, 0x00},  // U+0039 (9)
    {0x00, 0x0C, 0x0C, 0x00, 0x00, 0x0C, 0x0C, 0x00},  // U+003A (:)
    {0x00, 0x0C, 0x0C, 0x00, 0x00, 0x0C, 0x0C, 0x06},  // U+003B (;)
    {0x18, 0x0C, 0x06, 0x03, 0x06, 0x0C, 0x18, 0x00},  // U+003C (<)
    {0x00, 0x00, 0x3F, 0x00, 0x00, 0x3F, 0x00, 0x00},  // U+003D (=)
    {0x06, 0x0C, 0x18, 0x30, 0x18, 0x0C, 0x06, 0x00},  // U+003E (>)
    {0x1E, 0x33, 0x30, 0x18, 0x0C, 0x00, 0x0C, 0x00},  // U+003F (?)
    {0x3E, 0x63, 0x7B, 0x7B, 0x7B, 0x03, 0x1E, 0x00},  // U+0040 (@)
    {0x0C, 0x1E, 0x33, 0x33, 0x3F, 0x33, 0x33, 0x00},  // U+0041 (A)
    {0x3F, 0x66, 0x66, 0x3E, 0x66, 0x66, 0x3F, 0x00},  // U+0042 (B)
    {0x3C, 0x66, 0x03, 0x03, 0x03, 0x66, 0x3C, 0x00},  // U+0043 (C)
    {0x1F, 0x36, 0x66, 0x66, 0x66, 0x36, 0x1F, 0x00},  // U+0044 (D)
    {0x7F, 0x46, 0x16, 0x1E, 0x16, 0x46, 0x7F, 0x00},  // U+0045 (E)
    {0x7F, 0x46, 0x16, 0x1E, 0x16, 0x06, 0x0F, 0x00},  // U+0046 (F)
    {0x3C, 0x66, 0x03, 0x03, 0x73, 0x66, 0x7C, 0x00},  // U+0047 (G)
    {0x33, 0x33, 0x33, 0x3F, 0x33, 0x33, 0x33, 0x00},  // U+0048 (H)
    {0x1E, 0x0C, 0x0C, 0x0C, 0x0C, 0x0C, 0x1E, 0x00},  // U+0049 (I)
    {0x78, 0x30, 0x30, 0x30, 0x33, 0x33, 0x1E, 0x00},  // U+004A (J)
    {0x67, 0x66, 0x36, 0x1E, 0x36, 0x66, 0x67, 0x00},  // U+004B (K)
    {0x0F, 0x06, 0x06, 0x06, 0x46, 0x66, 0x7F, 0x00},  // U+004C (L)
    {0x63, 0x77, 0x7F, 0x7F, 0x6B, 0x63, 0x63, 0x00},  // U+004D (M)
    {0x63, 0x67, 0x6F, 0x7B, 0x73, 0x63, 0x63, 0x00},  // U+004E (N)
    {0x1C, 0x36, 0x63, 0x63, 0x63, 0x36, 0x1C, 0x00},  // U+004F (O)
    {0x3F, 0x66, 0x66, 0x3E, 0x06, 0x06, 0x0F, 0x00},  // U+0050 (P)
    {0x1E, 0x33, 0x33, 0x33, 0x3B, 0x1E, 0x38, 0x00},  // U+0051 (Q)
    {0x3F, 0x66, 0x66, 0x3E, 0x36, 0x66, 0x67, 0x00},  // U+0052 (R)
    {0x1E, 0x33, 0x07, 0x0E, 0x38, 0x33, 0x1E, 0x00},  // U+0053 (S)
    {0x3F, 0x2D, 0x0C, 0x0C, 0x0C, 0x0C, 0x1E, 0x00},  // U+0054 (T)
    {0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x3F, 0x00},  // U+0055 (U)
    {0x33, 0x33, 0x33, 0x33, 0x33, 0x1E, 0x0C, 0x00},  // U+0056 (V)
    {0x63, 0x63, 0x63, 0x6B, 0x7F, 0x77, 0x63, 0x00},  // U+0057 (W)
    {0x63, 0x63, 0x36, 0x1C, 0x1C, 0x36, 0x63, 0x00},  // U+0058 (X)
    {0x33, 0x33, 0x33, 0x1E, 0x0C, 0x0C, 0x1E, 0x00},  // U+0059 (Y)
    {0x7F, 0x63, 0x31, 0x18, 0x4C, 0x66, 0x7F, 0x00},  // U+005A (Z)
    {0x1E, 0x06, 0x06, 0x06, 0x06, 0x06, 0x1E, 0x00},  // U+005B ([)
    {0x03, 0x06, 0x0C, 0x18, 0x30, 0x60, 0x40, 0x00},  // U+005C (\)
    {0x1E, 0x18, 0x18, 0x18, 0x18, 0x18, 0x1E, 0x00},  // U+005D (])
    {0x08, 0x1C, 0x36, 0x63, 0x00, 0x00, 0x00, 0x00},  // U+005E (^)
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF},  // U+005F (_)
    {0x0C, 0x0C, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00},  // U+0060 (`)
    {0x00, 0x00, 0x1E, 0x30, 0x3E, 0x33, 0x6E, 0x00},  // U+0061 (a)
    {0x07, 0x06, 0x06, 0x3E, 0x66, 0x66, 0x3B, 0x00},  // U+0062 (b)
    {0x00, 0x00, 0x1E, 0x33, 0x03, 0x33, 0x1E, 0x00},  // U+0063 (c)
    {0x38, 0x30, 0x30, 0x3E, 0x33, 0x33, 0x6E, 0x00},  // U+0064 (d)
    {0x00, 0x00, 0x1E, 0x33, 0x3F, 0x03, 0x1E, 0x00},  // U+0065 (e)
    {0x1C, 0x36, 0x06, 0x0F, 0x06, 0x06, 0x0F, 0x00},  // U+0066 (f)
    {0x00, 0x00, 0x6E, 0x33, 0x33, 0x3E, 0x30, 0x1F},  // U+0067 (g)
    {0x07, 0x06, 0x36, 0x6E, 0x66, 0x66, 0x67, 0x00},  // U+0068 (h)
    {0x0C, 0x00, 0x0E, 0x0C, 0x0C, 0x0C, 0x1E, 0x00},  // U+0069 (i)
    {0x30, 0x00, 0x30, 0x30, 0x30, 0x33, 0x33, 0x1E},  // U+006A (j)
    {0x07, 0x06, 0x66, 0x36, 0x1E, 0x36, 0x67, 0x00},  // U+006B (k)
    {0x0E, 0x0C, 0x0C, 0x0C, 0x0C, 0x0C, 0x1E, 0x00},  // U+006C (l)
    {0x00, 0x00, 0x33, 0x7F, 0x7F, 0x6B, 0x63, 0x00},  // U+006D (m)
    {0x00, 0x00, 0x1F, 0x33, 0x33, 0x33, 0x33, 0x00},  // U+006E (n)
    {0x00, 0x00, 0x1E, 0x33, 0x33, 0x33, 0x1E, 0x00},  // U+006F (o)
    {0x00, 0x00, 0x3B, 0x66, 0x66, 0x3E, 0x06, 0x0F},  // U+0070 (p)
    {0x00, 0x00, 0x6E, 0x33, 0x33, 0x3E, 0x30, 0x78},  // U+0071 (q)
    {0x00, 0x00, 0x3B, 0x6E, 0x66, 0x06, 0x0F, 0x00},  // U+0072 (r)
    {0x00, 0x00, 0x3E, 0x03, 0x1E, 0x30, 0x1F, 0x00},  // U+0073 (s)
    {0x08, 0x0C, 0x3E, 0x0C, 0x0C, 0x2C, 0x18, 0x00},  // U+0074 (t)
    {0x00, 0x00, 0x33, 0x33, 0x33, 0x33, 0x6E, 0x00},  // U+0075 (u)
    {0x00, 0x00, 0x33, 0x33, 0x33, 0x1E, 0x0C, 0x00},  // U+0076 (v)
    {0x00, 0x00, 0x63, 0x6B, 0x7F, 0x7F, 0x36, 0x00},  // U+0077 (w)
    {0x00, 0x00, 0x63, 0x36, 0x1C, 0x36, 0x63, 0x00},  // U+0078 (x)
    {0x00, 0x00, 0x33, 0x33, 0x33, 0x3E, 0x30, 0x1F},  // U+0079 (y)
    {0x00, 0x00, 0x3F, 0x19, 0x0C, 0x26, 0x3F, 0x00},  // U+007A (z)
    {0x38, 0x0C, 0x0C, 0x07, 0x0C, 0x0C, 0x38, 0x00},  // U+007B ({)
    {0x18, 0x18, 0x18, 0x00, 0x18, 0x18, 0x18, 0x00},  // U+007C (|)
    {0x07, 0x0C, 0x0C, 0x38, 0x0C, 0x0C, 0x07, 0x00},  // U+007D (})
    {0x6E, 0x3B, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // U+007E (~)
};
constexpr int kGlyph = 8;  // glyph cell and advance, in font pixels

constexpr Rgb kInk{34, 34, 34};
constexpr Rgb kFrame{200, 200, 200};

class Canvas {
  public:
    Canvas(int width, int height)
        : width_(width), height_(height), rgb_(std::size_t(width) * std::size_t(height) * 3, 255) {}

    int width() const { return width_; }
    int height() const { return height_; }
    const std::uint8_t* data() const { return rgb_.data(); }

    // colour over the pixel with opacity alpha in [0, 1]; pixels outside the image are skipped,
    // so every shape below is clipped for free.
    void blend(int x, int y, Rgb c, float alpha) {
        if (x < 0 || y < 0 || x >= width_ || y >= height_ || alpha <= 0) return;
        std::uint8_t* p = &rgb_[(std::size_t(y) * std::size_t(width_) + std::size_t(x)) * 3];
        const auto mix = [alpha](std::uint8_t under, std::uint8_t over) {
            return std::uint8_t(std::lround(under + alpha * (float(over) - float(under))));
        };
        p[0] = mix(p[0], c.r), p[1] = mix(p[1], c.g), p[2] = mix(p[2], c.b);
    }

    void fill_rect(int x0, int y0, int w, int h, Rgb c) {
        for (int y = y0; y < y0 + h; ++y)
            for (int x = x0; x < x0 + w; ++x) blend(x, y, c, 1.0f);
    }

    void frame_rect(int x0, int y0, int w, int h, Rgb c) {
        fill_rect(x0, y0, w, 1, c), fill_rect(x0, y0 + h - 1, w, 1, c);
        fill_rect(x0, y0, 1, h, c), fill_rect(x0 + w - 1, y0, 1, h, c);
    }

    // A disc centred at (cx, cy) in pixel units (pixel (x, y) covers [x, x+1) x [y, y+1)).
    // Edge pixels get the fraction of a one-pixel ramp across the boundary as extra
    // transparency, a cheap anti-aliasing that keeps small discs round.
    void disc(float cx, float cy, float radius, Rgb c, float alpha) {
        const int x0 = int(std::floor(cx - radius - 1)), x1 = int(std::ceil(cx + radius + 1));
        const int y0 = int(std::floor(cy - radius - 1)), y1 = int(std::ceil(cy + radius + 1));
        for (int y = y0; y <= y1; ++y)
            for (int x = x0; x <= x1; ++x) {
                const float d = std::hypot(float(x) + 0.5f - cx, float(y) + 0.5f - cy);
                const float coverage = std::clamp(radius + 0.5f - d, 0.0f, 1.0f);
                blend(x, y, c, alpha * coverage);
            }
    }

    // Text with its top-left corner at (x, y), each font pixel drawn as a scale x scale block.
    // Characters outside printable ASCII are drawn as '?'.
    void text(int x, int y, const std::string& s, int scale, Rgb c) {
        for (unsigned char ch : s) {
            const std::uint8_t* glyph = kFont[(ch >= 0x20 && ch <= 0x7E ? ch : '?') - 0x20];
            for (int row = 0; row < kGlyph; ++row)
                for (int col = 0; col < kGlyph; ++col)
                    if (glyph[row] >> col & 1) fill_rect(x + col * scale, y + row * scale, scale, scale, c);
            x += kGlyph * scale;
        }
    }

  private:
    int width_, height_;
    std::vector<std::uint8_t> rgb_;
};

int text_width(const std::string& s, int scale) { return int(s.size()) * kGlyph * scale; }

// s cut to at most max_width pixels, ending in ".." when something was cut.
std::string fit_text(const std::string& s, int scale, int max_width) {
    if (text_width(s, scale) <= max_width) return s;
    const int chars = std::max(0, max_width / (kGlyph * scale) - 2);
    return s.substr(0, std::size_t(chars)) + "..";
}

std::string encode_png(const Canvas& canvas, const std::string& path) {
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    image.width = png_uint_32(canvas.width());
    image.height = png_uint_32(canvas.height());
    image.format = PNG_FORMAT_RGB;
    // First call sizes the buffer, second fills it (libpng manual, "simplified API").
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&image, nullptr, &size, 0, canvas.data(), 0, nullptr))
        throw IoError("write_scatter_png: cannot encode '" + path + "': " + image.message);
    std::string bytes(size, '\0');
    if (!png_image_write_to_memory(&image, bytes.data(), &size, 0, canvas.data(), 0, nullptr))
        throw IoError("write_scatter_png: cannot encode '" + path + "': " + image.message);
    bytes.resize(size);
    return bytes;
}

}  // namespace

Rgb class_colour(std::size_t k) {
    // Tableau 10 as in matplotlib's tab10 / D3's category10: distinguishable, and the
    // palette readers of embedding plots are used to.
    static constexpr Rgb palette[10] = {
        {31, 119, 180}, {255, 127, 14}, {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
        {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
    };
    return palette[k % 10];
}

void write_scatter_png(const std::string& path, const Tensor& points, std::span<const int> labels,
                       std::span<const std::string> class_names, const ScatterOptions& options) {
    if (points.ndim() != 2 || points.dim(1) != 2 || points.dim(0) != labels.size())
        throw ShapeError("write_scatter_png: points have shape " + to_string(points.shape()) + " and there are " +
                         std::to_string(labels.size()) + " labels, expected [n, 2] and n labels");
    const int W = options.width, H = options.height;
    if (W < 200 || H < 200 || W > 16384 || H > 16384)
        throw ValueError("write_scatter_png: image size " + std::to_string(W) + " x " + std::to_string(H) +
                         " is outside 200..16384 pixels a side");
    if (class_names.empty()) throw ValueError("write_scatter_png: no class names");
    if (!(options.point_radius >= 0) || !(options.point_alpha > 0 && options.point_alpha <= 1))
        throw ValueError("write_scatter_png: point_radius " + std::to_string(options.point_radius) +
                         " must be >= 0 and point_alpha " + std::to_string(options.point_alpha) + " in (0, 1]");
    const std::size_t n = labels.size(), K = class_names.size();
    for (std::size_t i = 0; i < n; ++i) {
        if (labels[i] < 0 || std::size_t(labels[i]) >= K)
            throw ValueError("write_scatter_png: label " + std::to_string(labels[i]) + " of point " + std::to_string(i) +
                             " is outside [0, " + std::to_string(K) + ")");
        if (!std::isfinite(points[2 * i]) || !std::isfinite(points[2 * i + 1]))
            throw ValueError("write_scatter_png: point " + std::to_string(i) + " is not finite");
    }

    // Sizes scale with the image: 8x8 glyphs at 2x on a 900-pixel image.
    const int s = std::max(1, std::min(W, H) / 450);
    const int margin = std::max(10, std::min(W, H) / 30);

    // Title: one step larger than the legend text when it fits the width, smaller or cut otherwise.
    int title_scale = s + 1;
    while (title_scale > 1 && text_width(options.title, title_scale) > W - 2 * margin) --title_scale;
    const std::string title = fit_text(options.title, title_scale, W - 2 * margin);
    const int title_h = title.empty() ? 0 : kGlyph * title_scale + margin / 2;

    // Legend: a swatch disc the height of a letter, a gap, the name; names cut at a quarter of the width.
    const int pad = 6 * s, swatch = kGlyph * s, gap = 4 * s, row_h = 14 * s;
    std::vector<std::string> names;
    int names_w = 0;
    for (const std::string& name : class_names) {
        names.push_back(fit_text(name, s, W / 4));
        names_w = std::max(names_w, text_width(names.back(), s));
    }
    const int legend_w = pad + swatch + gap + names_w + pad;
    const int legend_h = pad + int(K) * row_h - (row_h - swatch) + pad;

    const int plot_x = margin, plot_y = margin + title_h;
    const int plot_w = W - 2 * margin - margin / 2 - legend_w, plot_h = H - margin - plot_y;
    const int legend_x = plot_x + plot_w + margin / 2, legend_y = plot_y;

    Canvas canvas(W, H);
    canvas.text((W - text_width(title, title_scale)) / 2, margin, title, title_scale, kInk);
    canvas.frame_rect(plot_x, plot_y, plot_w, plot_h, kFrame);

    // Data -> pixels with one scale for both axes (equal aspect), centred in the frame, y up.
    const float radius =
        options.point_radius > 0 ? options.point_radius : std::max(1.5f, float(std::min(plot_w, plot_h)) / 320.0f);
    float xmin = std::numeric_limits<float>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
    for (std::size_t i = 0; i < n; ++i) {
        xmin = std::min(xmin, points[2 * i]), xmax = std::max(xmax, points[2 * i]);
        ymin = std::min(ymin, points[2 * i + 1]), ymax = std::max(ymax, points[2 * i + 1]);
    }
    if (n == 0) xmin = ymin = -1, xmax = ymax = 1;
    const float inset = radius + 3.0f * float(s);  // keeps discs off the frame
    const float xspan = std::max(xmax - xmin, 1e-12f), yspan = std::max(ymax - ymin, 1e-12f);
    const float scale = std::min((float(plot_w) - 2 * inset) / xspan, (float(plot_h) - 2 * inset) / yspan);
    const float cx = float(plot_x) + float(plot_w) / 2, cy = float(plot_y) + float(plot_h) / 2;
    const float mx = (xmin + xmax) / 2, my = (ymin + ymax) / 2;
    for (std::size_t i = 0; i < n; ++i)
        canvas.disc(cx + (points[2 * i] - mx) * scale, cy - (points[2 * i + 1] - my) * scale, radius,
                    class_colour(std::size_t(labels[i])), options.point_alpha);

    canvas.frame_rect(legend_x, legend_y, legend_w, legend_h, kFrame);
    for (std::size_t k = 0; k < K; ++k) {
        const int row_y = legend_y + pad + int(k) * row_h;
        canvas.disc(float(legend_x + pad) + float(swatch) / 2, float(row_y) + float(swatch) / 2, float(swatch) / 2,
                    class_colour(k), 1.0f);
        canvas.text(legend_x + pad + swatch + gap, row_y, names[k], s, kInk);
    }

    write_file_atomically(path, encode_png(canvas, path));
}

}  // namespace semigrad::viz
