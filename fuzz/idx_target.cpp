// libFuzzer target: data::load_idx on an image file and a label file made of arbitrary bytes.
//
// One input holds both files: a 2-byte little-endian length L, then L bytes of the label file,
// then the image file (everything left). Built twice: fuzz_idx_raw writes the two files as they
// are (plain IDX names), fuzz_idx_gzip writes them under .gz names, so the input bytes are the
// gzip stream zlib must inflate (corrupt, truncated, concatenated members, not gzip at all).
//
// Beyond "no crash": bad bytes must throw a semigrad::Error naming a file; a file that loads
// must satisfy everything load_idx promises. For plain files that is exact: the image file is
// 16 header bytes plus count*rows*cols pixels, the label file 8 bytes plus count labels, and
// the Dataset holds those very bytes. Each input is also read with max_count = 1.
#include <algorithm>
#include <cstring>
#include <vector>

#include "data/idx.hpp"
#include "fuzz/fuzz_common.hpp"

#ifndef SEMIGRAD_FUZZ_GZIP
#error "define SEMIGRAD_FUZZ_GZIP to 0 (plain IDX files) or 1 (gzip'd)"
#endif

namespace {

using namespace semigrad;

// `max_count` as load_idx was given it (0: the whole file).
void check_dataset(const data::Dataset& d, std::size_t max_count, const std::uint8_t* images,
                   std::size_t images_n, const std::uint8_t* labels, std::size_t labels_n) {
    fuzz::check(d.count > 0 && d.rows > 0 && d.cols > 0, "a loaded dataset has an empty size");
    fuzz::check(d.count == (max_count ? std::min(max_count, d.file_count) : d.file_count),
                "count is neither the file's count nor max_count");
    fuzz::check(d.images.size() == d.count * d.rows * d.cols, "images.size() != count*rows*cols");
    fuzz::check(d.labels.size() == d.count, "labels.size() != count");
    for (int label : d.labels) fuzz::check(label >= 0 && label < 10, "a label outside [0, 10)");

    if (!SEMIGRAD_FUZZ_GZIP) {
        // A whole read proves the files' exact sizes; a read of the first max_count items
        // (which never looks past them) only that they are there.
        const std::size_t image_bytes = 16 + d.file_count * d.rows * d.cols, label_bytes = 8 + d.file_count;
        fuzz::check(max_count ? images_n >= 16 + d.images.size() : images_n == image_bytes,
                    "the image file's size does not match its header");
        fuzz::check(max_count ? labels_n >= 8 + d.count : labels_n == label_bytes,
                    "the label file's size does not match its header");
        fuzz::check(std::memcmp(d.images.data(), images + 16, d.images.size()) == 0,
                    "the pixels differ from the file's");
        for (std::size_t i = 0; i < d.count; ++i)
            fuzz::check(d.labels[i] == labels[8 + i], "a label differs from the file's");
    }

    // The first and last images come out as pixel/255.
    const std::size_t indices[2] = {0, d.count - 1};
    const Tensor batch = data::images_to_tensor(d, indices);
    const std::size_t HW = d.rows * d.cols;
    fuzz::check(batch.size() == 2 * HW, "images_to_tensor returned the wrong size");
    for (std::size_t n = 0; n < 2; ++n)
        for (std::size_t i = 0; i < HW; ++i)
            fuzz::check(batch[n * HW + i] == static_cast<float>(d.images[indices[n] * HW + i]) / 255.0f,
                        "images_to_tensor does not give pixel/255");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::size_t labels_n = std::min<std::size_t>(data[0] | std::size_t{data[1]} << 8, size - 2);
    const std::uint8_t* labels = data + 2;
    const std::uint8_t* images = labels + labels_n;
    const std::size_t images_n = size - 2 - labels_n;

    const char* suffix = SEMIGRAD_FUZZ_GZIP ? ".gz" : "";
    const std::string labels_path =
        fuzz::write_scratch(std::string("labels-idx1-ubyte") + suffix, labels, labels_n);
    const std::string images_path =
        fuzz::write_scratch(std::string("images-idx3-ubyte") + suffix, images, images_n);
    bool whole_loaded = false;
    try {
        const data::Dataset d = data::load_idx(images_path, labels_path);
        check_dataset(d, 0, images, images_n, labels, labels_n);
        whole_loaded = true;
    } catch (const Error& e) {
        fuzz::check_names_a_file(e, images_path, labels_path);
    }
    // The first item alone (--limit-train's path): it may load files whose later bytes are
    // bad, but must load whenever the whole files do.
    try {
        const data::Dataset d = data::load_idx(images_path, labels_path, 10, /*max_count=*/1);
        check_dataset(d, 1, images, images_n, labels, labels_n);
    } catch (const Error& e) {
        fuzz::check(!whole_loaded, std::string("the first item alone is refused: ") + e.what());
        fuzz::check_names_a_file(e, images_path, labels_path);
    }
    return 0;
}
