// Tests of examples/plot.cpp: the PNG is valid and of the requested size, points and legend
// appear in the class colours at the right places, the title is drawn with the bitmap font,
// the write is atomic, and bad arguments or paths throw.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "examples/plot.hpp"
#include "tensor/error.hpp"

using namespace semigrad;
using namespace semigrad::viz;
namespace fs = std::filesystem;

namespace {

struct Image {
    int width = 0, height = 0;
    std::vector<std::uint8_t> rgb;
    Rgb at(int x, int y) const {
        const std::size_t k = (std::size_t(y) * std::size_t(width) + std::size_t(x)) * 3;
        return {rgb[k], rgb[k + 1], rgb[k + 2]};
    }
    std::vector<std::pair<int, int>> pixels_of(Rgb c) const {
        std::vector<std::pair<int, int>> out;
        for (int y = 0; y < height; ++y)
            for (int x = 0; x < width; ++x)
                if (at(x, y) == c) out.emplace_back(x, y);
        return out;
    }
};

// Decodes with libpng, independently of how the file was written.
Image read_png(const fs::path& path) {
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&image, path.c_str())) {
        ADD_FAILURE() << "libpng cannot read " << path << ": " << image.message;
        return {};
    }
    image.format = PNG_FORMAT_RGB;
    Image out{int(image.width), int(image.height), std::vector<std::uint8_t>(PNG_IMAGE_SIZE(image))};
    if (!png_image_finish_read(&image, nullptr, out.rgb.data(), 0, nullptr))
        ADD_FAILURE() << "libpng cannot decode " << path << ": " << image.message;
    return out;
}

std::string file_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

double median(std::vector<int> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? std::nan("") : v[v.size() / 2];
}

class ScatterPng : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("semigrad_test_plot_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;

    const std::vector<std::string> names_{"zero", "one", "two", "three"};
};

}  // namespace

TEST(ClassColour, IsTableau10AndRepeats) {
    EXPECT_EQ(class_colour(0), (Rgb{31, 119, 180}));
    EXPECT_EQ(class_colour(1), (Rgb{255, 127, 14}));
    EXPECT_EQ(class_colour(9), (Rgb{23, 190, 207}));
    EXPECT_EQ(class_colour(13), class_colour(3));
    for (std::size_t a = 0; a < 10; ++a)
        for (std::size_t b = a + 1; b < 10; ++b) EXPECT_FALSE(class_colour(a) == class_colour(b));
}

TEST_F(ScatterPng, WritesAValidPngOfTheRequestedSize) {
    const Tensor points({3, 2}, {0, 0, 1, 1, -1, 2});
    const std::vector<int> labels{0, 1, 2};
    const fs::path path = dir_ / "plot.png";
    write_scatter_png(path, points, labels, names_, {.width = 640, .height = 480, .title = "three points"});
    const std::string bytes = file_bytes(path);
    ASSERT_GE(bytes.size(), 8u);
    EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
    const Image img = read_png(path);
    EXPECT_EQ(img.width, 640);
    EXPECT_EQ(img.height, 480);
    // White background: the corners are outside every frame, disc and text.
    for (auto [x, y] : {std::pair{0, 0}, {639, 0}, {0, 479}, {639, 479}}) EXPECT_EQ(img.at(x, y), (Rgb{255, 255, 255}));
}

TEST_F(ScatterPng, PointsAreDrawnInTheirClassColourWhereTheyLie) {
    // Four classes at the corners of a square (y up), big opaque discs; class 3 is in the
    // legend but has no point.
    const Tensor points({3, 2}, {-1, -1, 1, -1, -1, 1});
    const std::vector<int> labels{0, 1, 2};
    const fs::path path = dir_ / "corners.png";
    write_scatter_png(path, points, labels, names_, {.width = 500, .height = 400, .point_radius = 12, .point_alpha = 1});
    const Image img = read_png(path);

    // A disc of radius 12 has ~450 fully covered pixels; a legend swatch at this size ~40.
    std::vector<int> xs[4], ys[4];
    for (std::size_t k = 0; k < 4; ++k) {
        for (auto [x, y] : img.pixels_of(class_colour(k))) xs[k].push_back(x), ys[k].push_back(y);
        EXPECT_GT(xs[k].size(), 0u) << "class " << k << " (legend swatch at least)";
    }
    for (std::size_t k = 0; k < 3; ++k) EXPECT_GT(xs[k].size(), 400u) << "class " << k;
    EXPECT_LT(xs[3].size(), 100u);
    // Medians fall inside the discs (the swatch pixels are a minority).
    EXPECT_LT(median(xs[0]) + 100, median(xs[1]));  // class 1 is right of class 0
    EXPECT_NEAR(median(ys[0]), median(ys[1]), 2);
    EXPECT_LT(median(ys[2]) + 100, median(ys[0]));  // class 2 is above class 0 (rows grow downwards)
    EXPECT_NEAR(median(xs[0]), median(xs[2]), 2);
    // Equal aspect: the x and y gaps in pixels are the same, as they are in data units.
    EXPECT_NEAR(median(xs[1]) - median(xs[0]), median(ys[0]) - median(ys[2]), 2);
}

TEST_F(ScatterPng, TranslucentPointsBlendTowardsTheirColour) {
    const Tensor points({1, 2}, {0, 0});
    const std::vector<int> labels{1};
    const fs::path path = dir_ / "alpha.png";
    write_scatter_png(path, points, labels, names_, {.width = 300, .height = 300, .point_radius = 10, .point_alpha = 0.5f});
    const Image img = read_png(path);
    // Half of orange (255, 127, 14) over white (255, 255, 255), rounded: (255, 191, 135).
    EXPECT_GT(img.pixels_of({255, 191, 135}).size(), 200u);
}

TEST_F(ScatterPng, TitleIsDrawnWithTheBitmapFont) {
    const Tensor points({2, 2}, {0, 0, 1, 1});
    const std::vector<int> labels{0, 1};
    const Rgb ink{34, 34, 34};
    write_scatter_png(dir_ / "untitled.png", points, labels, names_, {.width = 480, .height = 480});
    write_scatter_png(dir_ / "titled.png", points, labels, names_, {.width = 480, .height = 480, .title = "T"});
    const std::size_t without = read_png(dir_ / "untitled.png").pixels_of(ink).size();
    const std::size_t with = read_png(dir_ / "titled.png").pixels_of(ink).size();
    // The legend names are ink too; the title adds exactly the 22 set bits of the font's 'T'
    // (rows 0x3F, 0x2D, 4 x 0x0C, 0x1E), each a 2 x 2 block at 480 pixels (legend text is 1x).
    EXPECT_GT(without, 0u);
    EXPECT_EQ(with - without, 22u * 4u);
}

TEST_F(ScatterPng, SameInputSameBytes) {
    const Tensor points({4, 2}, {0.5f, 0.1f, -3, 2, 7, -1, 0, 0});
    const std::vector<int> labels{3, 2, 1, 0};
    write_scatter_png(dir_ / "a.png", points, labels, names_, {.title = "same"});
    write_scatter_png(dir_ / "b.png", points, labels, names_, {.title = "same"});
    EXPECT_EQ(file_bytes(dir_ / "a.png"), file_bytes(dir_ / "b.png"));
}

TEST_F(ScatterPng, WriteIsAtomicAndLeavesNoTemporaryFile) {
    const Tensor points({2, 2}, {0, 0, 1, 1});
    const std::vector<int> labels{0, 1};
    const fs::path path = dir_ / "embeddings.png";
    {
        std::ofstream old(path);
        old << "an older picture";
    }
    write_scatter_png(path, points, labels, names_);
    EXPECT_EQ(read_png(path).width, 900);  // replaced, with the default size
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(dir_)) files.push_back(entry.path().filename());
    EXPECT_EQ(files, std::vector<std::string>{"embeddings.png"});
}

TEST_F(ScatterPng, UnwritablePathThrowsIoErrorNamingTheFile) {
    const Tensor points({2, 2}, {0, 0, 1, 1});
    const std::vector<int> labels{0, 1};
    const fs::path path = dir_ / "no_such_folder" / "plot.png";
    try {
        write_scatter_png(path, points, labels, names_);
        ADD_FAILURE() << "no IoError";
    } catch (const IoError& e) {
        EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(dir_ / "no_such_folder"));
}

TEST_F(ScatterPng, RejectsBadArguments) {
    const fs::path path = dir_ / "bad.png";
    const std::vector<int> two{0, 1};
    EXPECT_THROW(write_scatter_png(path, Tensor({2, 3}), two, names_), ShapeError);
    EXPECT_THROW(write_scatter_png(path, Tensor({4}), two, names_), ShapeError);
    EXPECT_THROW(write_scatter_png(path, Tensor({3, 2}), two, names_), ShapeError);
    const std::vector<int> out_of_range{0, 4}, negative{-1, 0};
    EXPECT_THROW(write_scatter_png(path, Tensor({2, 2}), out_of_range, names_), ValueError);
    EXPECT_THROW(write_scatter_png(path, Tensor({2, 2}), negative, names_), ValueError);
    EXPECT_THROW(write_scatter_png(path, Tensor({2, 2}), two, std::span<const std::string>{}), ValueError);
    Tensor nan_point({2, 2});
    nan_point[3] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_THROW(write_scatter_png(path, nan_point, two, names_), ValueError);
    EXPECT_THROW(write_scatter_png(path, Tensor({2, 2}), two, names_, {.width = 100}), ValueError);
    EXPECT_THROW(write_scatter_png(path, Tensor({2, 2}), two, names_, {.point_alpha = 0}), ValueError);
    EXPECT_THROW(write_scatter_png(path, Tensor({2, 2}), two, names_, {.point_radius = -1}), ValueError);
    EXPECT_FALSE(fs::exists(path));
}
