#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/result.hpp"
#include "amoauth/crypto/aead.hpp"
#include "amoauth/service/ports.hpp"
#include "fake_clock.hpp"
#include "run_co.hpp"
#include "store_test_helpers.hpp"

/// One storage engine under test: how to open its store and how an operator (or someone holding
/// its files) sees what it keeps. The store contract (store_contract_test.cpp) is written once
/// against service::Store and this interface; each engine instantiates it.
namespace amoauth::testing::store {

class StoreEngine {
 public:
  virtual ~StoreEngine() = default;
  /// "sqlite", "postgresql": as service::Store::Engine() says.
  [[nodiscard]] virtual std::string_view Name() const = 0;
  /// Opens the store: the first call creates and migrates the database, each later one opens
  /// another view of the same data with connections of its own, as another process would.
  /// `previous_key`: the key being retired during a rotation (nullptr: none).
  virtual Result<std::unique_ptr<service::Store>> Open(const crypto::MasterKey& key,
                                                       std::size_t max_pending_states,
                                                       const core::Clock& clock,
                                                       const crypto::MasterKey* previous_key) = 0;
  /// Runs `sql` on a connection of its own, as an operator's SQL client would.
  virtual Rows Query(const std::string& sql) = 0;
  virtual void Exec(const std::string& sql) = 0;
  /// An SQL literal of type blob/bytea holding the bytes whose hex digits are `hex`.
  [[nodiscard]] virtual std::string BytesLiteral(std::string_view hex) const = 0;
  /// Every byte the engine has put on disk for this database, after writing out what it only
  /// held in memory: what someone who copies the files gets.
  virtual std::string FileBytes() = 0;
};

/// A test over one engine's store. Engine-only tests derive with their engine; the contract is
/// parameterised over engine factories.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { engine_ = MakeEngine(); }
  virtual std::unique_ptr<StoreEngine> MakeEngine() = 0;

  /// A store on this test's database (another process's view when called again).
  std::unique_ptr<service::Store> OpenStore(const crypto::MasterKey& key,
                                            std::size_t max_pending_states = 10'000) {
    return Unwrap(engine_->Open(key, max_pending_states, clock_, nullptr));
  }
  /// A store that writes with `key` and still reads what `previous_key` sealed (a rotation).
  std::unique_ptr<service::Store> OpenRotatingStore(const crypto::MasterKey& key,
                                                    const crypto::MasterKey& previous_key) {
    return Unwrap(engine_->Open(key, 10'000, clock_, &previous_key));
  }
  std::unique_ptr<service::Store> OpenStore() { return OpenStore(key_); }

  /// Runs rotation.RotateKeyBatch(limit) until a batch finds nothing (at most 100 times);
  /// returns the sum of the batches (`unreadable`: the last batch's) and their count.
  service::KeyRotationBatch RotateAll(service::KeyRotation& rotation,
                                      std::size_t limit,
                                      int& batches) {
    service::KeyRotationBatch total;
    batches = 0;
    for (int guard = 0; guard < 100; ++guard) {
      const auto batch = Unwrap(Run(rotation.RotateKeyBatch(limit)));
      ++batches;
      total.rotated += batch.rotated;
      total.changed += batch.changed;
      total.unreadable = batch.unreadable;
      if (batch.rotated == 0 && batch.changed == 0) {
        break;
      }
    }
    return total;
  }

  Rows Query(const std::string& sql) { return engine_->Query(sql); }
  void Exec(const std::string& sql) { engine_->Exec(sql); }

  template <class T>
  T Run(boost::asio::awaitable<T> aw) {
    return RunCo(ioc_, std::move(aw));
  }

  std::unique_ptr<StoreEngine> engine_;
  FakeClock clock_{kNow};
  crypto::MasterKey key_ = crypto::MasterKey::Generate();
  boost::asio::io_context ioc_;
};

/// How the contract gets a fresh engine (a new, empty database) for each test.
struct EngineFactory {
  std::string name;  ///< the test-name suffix: sqlite, postgresql
  std::function<std::unique_ptr<StoreEngine>()> make;
};
inline void PrintTo(const EngineFactory& f, std::ostream* os) {
  *os << f.name;
}

/// The store contract: TEST_P(StoreContract, …) in store_contract_test.cpp, instantiated once
/// per engine (sqlite_contract.cpp, postgres_engine.cpp).
class StoreContract : public StoreTest, public ::testing::WithParamInterface<EngineFactory> {
 protected:
  std::unique_ptr<StoreEngine> MakeEngine() override { return GetParam().make(); }
};

/// INSTANTIATE_TEST_SUITE_P's name generator: the engine's name.
inline std::string EngineName(const ::testing::TestParamInfo<EngineFactory>& info) {
  return info.param.name;
}

}  // namespace amoauth::testing::store
