// IDX files (the MNIST format) read into memory, and MNIST-style folders of four such files.
//
// An IDX file is `00 00 TT ND`, ND big-endian uint32 sizes, then the data in C order
// (yann.lecun.com/exdb/mnist). We read unsigned-byte files only (TT = 0x08): images of rank 3
// [count, rows, cols] and labels of rank 1 [count], plain or gzip'd (zlib reads both). Every
// header field is checked against what the file really holds, so a bad download fails here with
// a message naming the file, not later as a wrong shape or an out-of-range label.
//
// Images stay uint8 (47 MB for MNIST's training set instead of 188 MB of floats); batches are
// scaled to [0,1] floats on the way out (images_to_tensor). This is not a general IDX reader:
// other element types and ranks are rejected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace semigrad::data {

// One image file with its label file.
struct Dataset {
    std::vector<std::uint8_t> images;  // count*rows*cols, row-major
    std::vector<int> labels;           // count
    std::size_t count = 0, rows = 0, cols = 0;  // count: images read
    std::size_t file_count = 0;                 // images the file holds (its header's count)
    std::string images_path, labels_path;
};

// Reads an image file and its label file. Throws IoError (cannot open or read, not a regular
// file) or FormatError (magic, type, rank, sizes vs the real length, count mismatch, label
// outside [0, num_classes), corrupt gzip), each naming the file and the problem. With
// max_count > 0 only the first max_count images and labels are read (and checked); the rest
// of each file is never inflated.
Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 int num_classes = 10, std::size_t max_count = 0);

// The training and test sets of one MNIST-style folder.
struct Split {
    Dataset train, test;
};

// Reads `dir`/{train,t10k}-{images-idx3,labels-idx1}-ubyte, each either gzip'd (.gz) or plain,
// and also under the dotted names (train-images.idx3-ubyte) some mirrors use. Throws IoError
// naming the folder and the names it looked for when a file is missing.
// max_train > 0: read only the first max_train training images (the trainer's --limit-train).
Split load_mnist_folder(const std::string& dir, std::size_t max_train = 0);

// The images at `indices` as float32 [N,1,rows,cols], pixel/255 (the tutorial's
// `tf.cast(img, tf.float32) / 255.`). Throws ValueError on an index >= d.count.
Tensor images_to_tensor(const Dataset& d, std::span<const std::size_t> indices);
// The same for the n images first .. first+n-1 (evaluation's chunks); ValueError past d.count.
Tensor images_to_tensor(const Dataset& d, std::size_t first, std::size_t n);

}  // namespace semigrad::data
