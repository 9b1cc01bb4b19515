// libFuzzer target: nn::load_checkpoint on a file of arbitrary bytes, into a small built model
// and its Adam optimiser (checkpoint_model.hpp).
//
// Each input is loaded as it is and, when its last four bytes are not the crc32 of the rest,
// once more with the checksum recomputed: a mutation almost always breaks the checksum, and the
// second load lets the fuzzer reach the checks behind it (names, shapes, counts, optimiser type).
//
// Beyond "no crash", what checkpoint.hpp promises:
// - a file that is refused throws a semigrad::Error naming the file, and leaves the model and
//   optimiser exactly as they were (every parameter, slot, generator and the step counter);
// - a file that loads describes a state the writer can write: saving the loaded state and
//   loading that into a fresh model gives the same state and the same metadata.
#include <zlib.h>

#include <vector>

#include "fuzz/checkpoint_model.hpp"
#include "fuzz/fuzz_common.hpp"

namespace {

using namespace semigrad;

// Built once: a load reads the model's names and shapes, never its values, so reusing it keeps
// every input's outcome independent of the inputs before it. (The model a loaded state is
// saved and reloaded into is built afresh each time, so nothing in it can be left over.)
fuzz::CheckpointModel& target_model() {
    static fuzz::CheckpointModel m = fuzz::make_checkpoint_model();
    return m;
}

void load_one(const std::uint8_t* data, std::size_t size) {
    fuzz::CheckpointModel& m = target_model();
    const std::vector<std::uint64_t> before = fuzz::snapshot(m);
    const std::string path = fuzz::write_scratch("model.ckpt", data, size);

    nn::Metadata metadata;
    try {
        metadata = nn::load_checkpoint(path, *m.model, *m.opt);
    } catch (const Error& e) {
        fuzz::check_names_a_file(e, path);
        fuzz::check(fuzz::snapshot(m) == before, "a refused checkpoint changed the model or optimiser");
        return;
    }

    const std::vector<std::uint64_t> loaded = fuzz::snapshot(m);
    const std::string again = (fuzz::scratch_dir() / "again.ckpt").string();
    fuzz::CheckpointModel fresh = fuzz::make_checkpoint_model(/*seed=*/8);
    try {
        nn::save_checkpoint(again, *m.model, *m.opt, metadata);
        const nn::Metadata reloaded = nn::load_checkpoint(again, *fresh.model, *fresh.opt);
        fuzz::check(reloaded == metadata, "metadata differ after save and load");
    } catch (const Error& e) {
        fuzz::fail(std::string("a loaded state does not save and load again: ") + e.what());
    }
    fuzz::check(fuzz::snapshot(fresh) == loaded, "the state differs after save and load");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    load_one(data, size);
    if (size < 4) return 0;
    std::vector<std::uint8_t> fixed(data, data + size);
    const std::size_t body = size - 4;
    const auto crc = static_cast<std::uint32_t>(crc32_z(0L, fixed.data(), body));
    bool changed = false;
    for (int b = 0; b < 4; ++b) {
        const auto byte = static_cast<std::uint8_t>((crc >> (8 * b)) & 0xffu);
        changed |= fixed[body + b] != byte;
        fixed[body + b] = byte;
    }
    if (changed) load_one(fixed.data(), fixed.size());
    return 0;
}
