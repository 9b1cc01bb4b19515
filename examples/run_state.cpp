#include "examples/run_state.hpp"

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iterator>

#include "nn/checkpoint.hpp"
#include "tensor/atomic_file.hpp"

namespace fs = std::filesystem;

namespace semigrad::examples {

namespace {

// --loss and --distance as run-key numbers (the key holds integers): their index in these lists.
const std::vector<std::string> kLossNames(std::begin(kLosses), std::end(kLosses));
const std::vector<std::string> kDistanceNames = {"L2", "squared-L2", "angular"};

std::int64_t index_of(const std::vector<std::string>& names, const std::string& name) {
    return std::int64_t(std::find(names.begin(), names.end(), name) - names.begin());
}

}  // namespace

RunKey run_key(const Options& opt, const data::Dataset& train, std::size_t train_count) {
    const std::size_t pixels = train_count * train.rows * train.cols;
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32_z(crc, train.images.data(), pixels);
    for (std::size_t i = 0; i < train_count; ++i) {
        const auto label = static_cast<unsigned char>(train.labels[i]);
        crc = crc32_z(crc, &label, 1);
    }
    return {{"seed", std::int64_t(opt.seed)},
            {"batch_size", opt.batch_size},
            {"train_samples", std::int64_t(train_count)},
            {"shuffle_buffer", std::int64_t(opt.shuffle_buffer)},
            {"data_crc32", std::int64_t(crc)},
            {"loss", index_of(kLossNames, opt.loss)},
            {"distance", index_of(kDistanceNames, opt.distance)}};
}

namespace {

// "epoch_loss_0", "epoch_loss_1", ...
std::string epoch_key(std::string what, std::size_t e) {
    what.append(std::to_string(e));
    return what;
}

// One metadata entry of --resume, checked: present, of type T, and (integers) not negative.
template <class T>
T entry(const Options& opt, const nn::Metadata& meta, const std::string& key) {
    const auto it = meta.find(key);
    if (it == meta.end())
        throw FormatError("checkpoint '" + opt.resume + "': metadata '" + key +
                          "' is missing (not a checkpoint of this trainer?)");
    const T* value = std::get_if<T>(&it->second);
    if (!value)
        throw FormatError("checkpoint '" + opt.resume + "': metadata '" + key + "' is " +
                          (std::holds_alternative<double>(it->second) ? "a double" : "an integer") +
                          ", expected " + (std::is_same_v<T, double> ? "a double" : "an integer"));
    if constexpr (std::is_same_v<T, std::int64_t>)
        if (*value < 0)
            throw FormatError("checkpoint '" + opt.resume + "': metadata '" + key + "' is " +
                              std::to_string(*value) + ", expected a count >= 0");
    return *value;
}

}  // namespace

void save_run(const Options& opt, nn::Sequential& model, const nn::Optimizer& adam,
              const RunKey& key, const History& h) {
    nn::Metadata meta(key.begin(), key.end());
    meta["epoch"] = std::int64_t(h.epoch_loss.size());
    meta["no_positive_batches"] = std::int64_t(h.no_positive_batches);
    for (std::size_t e = 0; e < h.epoch_loss.size(); ++e) {
        meta[epoch_key("epoch_loss_", e)] = h.epoch_loss[e];
        meta[epoch_key("epoch_seconds_", e)] = h.epoch_seconds[e];
        meta[epoch_key("epoch_active_", e)] = h.epoch_active[e];
    }
    meta["partial_steps"] = std::int64_t(h.partial.steps);
    meta["partial_seen"] = std::int64_t(h.partial.seen);
    meta["partial_loss_sum"] = h.partial.loss_sum;
    meta["partial_active_sum"] = h.partial.active_sum;
    meta["partial_seconds"] = h.partial.seconds;
    nn::save_checkpoint(opt.checkpoint, model, adam, meta);
}

History resume_run(const Options& opt, nn::Sequential& model, nn::Optimizer& adam,
                   const RunKey& key) {
    const nn::Metadata meta = nn::load_checkpoint(opt.resume, model, adam);
    const std::map<std::string, std::string> flag_of = {
        {"seed", "--seed"}, {"batch_size", "--batch-size"}, {"train_samples", "--limit-train"},
        {"shuffle_buffer", "--shuffle-buffer"}, {"data_crc32", "--data"}, {"loss", "--loss"},
        {"distance", "--distance"}};
    for (const auto& [name, value] : key) {
        const std::int64_t saved = entry<std::int64_t>(opt, meta, name);
        if (saved == value) continue;
        std::string here = std::to_string(value);
        if (name == "data_crc32") here = opt.data;
        if (name == "train_samples") here = "(" + here + " training images)";
        std::string there = std::to_string(saved);
        if (name == "loss" || name == "distance") {
            const auto& names = name == "loss" ? kLossNames : kDistanceNames;
            here = name == "loss" ? opt.loss : opt.distance;
            there = std::size_t(saved) < names.size() ? names[std::size_t(saved)] : there;
        }
        throw UsageError(flag_of.at(name) + " " + here + " does not match " + opt.resume +
                         ", made with " + name + " " + there +
                         " (resume with the settings and data it was made with)");
    }
    const auto epochs_done = std::size_t(entry<std::int64_t>(opt, meta, "epoch"));
    if (epochs_done > std::size_t(opt.epochs))
        throw UsageError("--epochs " + std::to_string(opt.epochs) + " is less than the " +
                         std::to_string(epochs_done) + " epochs already done in " + opt.resume);
    History h;
    h.no_positive_batches = std::size_t(entry<std::int64_t>(opt, meta, "no_positive_batches"));
    for (std::size_t e = 0; e < epochs_done; ++e) {
        h.epoch_loss.push_back(entry<double>(opt, meta, epoch_key("epoch_loss_", e)));
        h.epoch_seconds.push_back(entry<double>(opt, meta, epoch_key("epoch_seconds_", e)));
        h.epoch_active.push_back(entry<double>(opt, meta, epoch_key("epoch_active_", e)));
    }
    h.partial.steps = std::size_t(entry<std::int64_t>(opt, meta, "partial_steps"));
    h.partial.seen = std::size_t(entry<std::int64_t>(opt, meta, "partial_seen"));
    h.partial.loss_sum = entry<double>(opt, meta, "partial_loss_sum");
    h.partial.active_sum = entry<double>(opt, meta, "partial_active_sum");
    h.partial.seconds = entry<double>(opt, meta, "partial_seconds");
    if (h.partial.steps > 0 && epochs_done == std::size_t(opt.epochs))
        throw UsageError("--epochs " + std::to_string(opt.epochs) + " ends before the " +
                         std::to_string(h.partial.steps) + " steps of epoch " +
                         std::to_string(epochs_done + 1) + " already done in " + opt.resume);
    return h;
}

void check_paths(const Options& opt) {
    StagedFolder::check_replaceable(opt.out, "--out");
    std::error_code ec;
    if (!opt.resume.empty() && !fs::is_regular_file(opt.resume, ec))
        throw IoError("--resume " + opt.resume + ": not a regular file");
    if (opt.checkpoint.empty()) return;
    const std::string& ck = opt.checkpoint;
    struct stat st {};
    if (::lstat(ck.c_str(), &st) == 0) {
        // rename() would replace a link by a file, a device node by a file: refuse them all.
        if (S_ISLNK(st.st_mode))
            throw IoError("--checkpoint " + ck + ": is a symbolic link (give the file's own path)");
        if (S_ISDIR(st.st_mode))
            throw IoError("--checkpoint " + ck + ": is a folder, not a file");
        if (!S_ISREG(st.st_mode))
            throw IoError("--checkpoint " + ck + ": exists and is not a regular file");
        if (!nn::looks_like_checkpoint(ck))
            throw IoError("--checkpoint " + ck +
                          ": exists and is not a semigrad checkpoint (it would be overwritten)");
    }
    const fs::path parent = fs::absolute(ck, ec).parent_path();
    if (!fs::is_directory(parent, ec))
        throw IoError("--checkpoint " + ck + ": folder " + parent.string() + " does not exist");
    if (::access(parent.c_str(), W_OK | X_OK) != 0)
        throw IoError("--checkpoint " + ck + ": cannot write in " + parent.string() + ": " +
                      std::strerror(errno));
    remove_stale_temporaries(ck);
}

}  // namespace semigrad::examples
