#include <memory>

#include <gtest/gtest.h>

#include "sqlite_engine.hpp"
#include "store_engine.hpp"

namespace amoauth::testing::store {
namespace {

INSTANTIATE_TEST_SUITE_P(Sqlite,
                         StoreContract,
                         ::testing::Values(EngineFactory{
                             "sqlite", [] { return std::make_unique<SqliteEngine>(); }}),
                         EngineName);

}  // namespace
}  // namespace amoauth::testing::store
