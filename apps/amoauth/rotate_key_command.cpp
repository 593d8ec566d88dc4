// `amoauth rotate-key`: re-seals every sealed column under AMOAUTH_MASTER_KEY that
// AMOAUTH_MASTER_KEY_PREVIOUS sealed, while `serve` instances keep running
// (docs/adr/0005-key-rotation.md, docs/operations.md "Rotating the master key").
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "commands.hpp"
#include "run_to_completion.hpp"
#include "store_command.hpp"

namespace amoauth::app {
namespace {

std::int64_t RowsUnder(const std::vector<std::pair<std::string, std::int64_t>>& counts,
                       const std::string& key_id) {
  for (const auto& [id, rows] : counts) {
    if (id == key_id) {
      return rows;
    }
  }
  return 0;
}

}  // namespace

int RunRotateKey(const CommonOptions& options, const RotateKeyOptions& rotate) {
  if (rotate.batch_size < 1) {
    fmt::print(stderr, "amoauth: --batch-size must be at least 1\n");
    return 2;
  }
  int exit_code = 0;
  auto command = OpenCommandStore(options, exit_code);
  if (!command) {
    return exit_code;
  }
  const Config& config = command->config;
  if (!config.previous_master_key) {
    fmt::print(stderr,
               "amoauth: set AMOAUTH_MASTER_KEY_PREVIOUS to the key being retired and "
               "AMOAUTH_MASTER_KEY to the new one (docs/operations.md, \"Rotating the master "
               "key\"); nothing changed\n");
    return 2;
  }
  auto* rotation = dynamic_cast<service::KeyRotation*>(command->store.get());
  if (rotation == nullptr) {
    fmt::print(stderr, "amoauth: this store cannot rotate keys\n");
    return 1;
  }
  const std::string new_id = config.master_key->Id();
  const std::string old_id = config.previous_master_key->Id();
  boost::asio::io_context ioc;

  // Every row must be under one of the two keys before anything is written: a key id neither
  // names means a wrong key was given, and the rotation would leave those rows unreadable.
  auto before = RunToCompletion(ioc, rotation->CountByKeyId());
  if (!before) {
    fmt::print(stderr, "amoauth: cannot count the sealed rows: {}\n", before.error().message());
    return 1;
  }
  for (const auto& [id, rows] : *before) {
    if (id != new_id && id != old_id) {
      fmt::print(stderr,
                 "amoauth: {} sealed row(s) are under key id {}, which is neither "
                 "AMOAUTH_MASTER_KEY (key id {}) nor AMOAUTH_MASTER_KEY_PREVIOUS (key id {}): a "
                 "wrong key was given; nothing changed\n",
                 rows,
                 id,
                 new_id,
                 old_id);
      return 1;
    }
  }
  fmt::print(
      "Rotating {}: {} sealed row(s) under the previous key id {}, {} under the new key "
      "id {}.\n",
      config.database.Describe(),
      RowsUnder(*before, old_id),
      old_id,
      RowsUnder(*before, new_id),
      new_id);

  service::KeyRotationBatch total;
  std::int64_t batches = 0;
  for (;;) {
    if (rotate.max_batches > 0 && batches >= rotate.max_batches) {
      fmt::print("Stopped after {} batch(es), as --max-batches asked.\n", batches);
      break;
    }
    auto batch =
        RunToCompletion(ioc, rotation->RotateKeyBatch(static_cast<std::size_t>(rotate.batch_size)));
    if (!batch) {
      fmt::print(stderr,
                 "amoauth: a batch failed ({}); {} row(s) were re-sealed before it. Run "
                 "`amoauth rotate-key` again to go on.\n",
                 batch.error().message(),
                 total.rotated);
      return 1;
    }
    ++batches;
    total.rotated += batch->rotated;
    total.changed += batch->changed;
    total.unreadable = batch->unreadable;  // the same rows each batch: the last count
    if (batch->rotated == 0 && batch->changed == 0) {
      break;
    }
  }

  auto after = RunToCompletion(ioc, rotation->CountByKeyId());
  if (!after) {
    fmt::print(stderr, "amoauth: cannot count the sealed rows: {}\n", after.error().message());
    return 1;
  }
  const std::int64_t left = RowsUnder(*after, old_id);
  fmt::print(
      "Re-sealed {} row(s) under key id {} in {} batch(es); {} re-read after a concurrent "
      "change.\n",
      total.rotated,
      new_id,
      batches,
      total.changed);
  if (left == 0) {
    fmt::print(
        "No row is under key id {} any more: remove AMOAUTH_MASTER_KEY_PREVIOUS from every "
        "instance and restart them; the old key can then be destroyed.\n",
        old_id);
    return 0;
  }
  if (rotate.max_batches > 0 && batches >= rotate.max_batches && total.unreadable == 0) {
    fmt::print("{} row(s) are still under key id {}: run `amoauth rotate-key` again to go on.\n",
               left,
               old_id);
    return 0;
  }
  fmt::print(stderr,
             "amoauth: {} row(s) are still under key id {} ({} do not open under the previous "
             "key: see the log). Keep AMOAUTH_MASTER_KEY_PREVIOUS; check that every instance "
             "runs with the new AMOAUTH_MASTER_KEY, then run `amoauth rotate-key` again.\n",
             left,
             old_id,
             total.unreadable);
  return 1;
}

}  // namespace amoauth::app
