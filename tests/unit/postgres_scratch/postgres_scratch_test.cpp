#include "postgres_scratch.hpp"

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <gtest/gtest.h>
#include <libpq-fe.h>

namespace {

using amoauth::testing::ScratchDatabase;
using amoauth::testing::ScratchPostgres;

struct Closer {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Connection = std::unique_ptr<PGconn, Closer>;

Connection Connect(const std::string& url) {
  return Connection(PQconnectdb(url.c_str()));
}

/// The first column of the first row of `sql`, or nullopt (with the reason in the test log).
std::optional<std::string> QueryOne(PGconn* c, const std::string& sql) {
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c, sql.c_str()), &PQclear);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) < 1) {
    ADD_FAILURE() << sql << ": " << PQerrorMessage(c);
    return std::nullopt;
  }
  return std::string(PQgetvalue(r.get(), 0, 0));
}

/// Whether `sql` runs (a command or a query), without failing the test.
bool Runs(PGconn* c, const std::string& sql) {
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c, sql.c_str()), &PQclear);
  return PQresultStatus(r.get()) == PGRES_COMMAND_OK || PQresultStatus(r.get()) == PGRES_TUPLES_OK;
}

bool DatabaseExists(const std::string& server_url, const std::string& name) {
  auto c = Connect(server_url);
  EXPECT_EQ(PQstatus(c.get()), CONNECTION_OK) << PQerrorMessage(c.get());
  return QueryOne(c.get(), "SELECT count(*) FROM pg_database WHERE datname = '" + name + "'") ==
         "1";
}

TEST(ScratchDatabase, IsAFreshDatabaseOfItsOwnDroppedAtTheEndEvenWithASessionOpen) {
  const char* env = std::getenv("AMOAUTH_TEST_POSTGRES_URL");
  ASSERT_NE(env, nullptr) << "run through ctest: it starts the server";
  const std::string server = env;
  std::string name;
  Connection lingering;
  {
    ScratchDatabase first;
    ScratchDatabase second;
    name = first.Name();
    EXPECT_NE(first.Name(), second.Name());
    EXPECT_EQ(first.Name().rfind("t_", 0), 0U) << first.Name();
    EXPECT_EQ(first.Name().size(), 2U + 16U) << first.Name();
    EXPECT_NE(first.Url().find("/" + first.Name() + "?host="), std::string::npos) << first.Url();

    auto c = Connect(first.Url());
    ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK) << PQerrorMessage(c.get());
    EXPECT_EQ(QueryOne(c.get(), "SELECT current_database()"), first.Name());
    EXPECT_EQ(QueryOne(c.get(), "SELECT 1"), "1");
    EXPECT_EQ(QueryOne(c.get(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), "0");
    EXPECT_TRUE(DatabaseExists(server, name));
    // Still connected while `first` is destroyed: the drop happens all the same (WITH (FORCE)).
    lingering = std::move(c);
  }
  EXPECT_FALSE(DatabaseExists(server, name));
  EXPECT_FALSE(Runs(lingering.get(), "SELECT 1")) << "the session on the dropped database ended";
}

TEST(ScratchDatabase, WithoutTheServerVariableFailsSayingToRunThroughCtest) {
  const char* env = std::getenv("AMOAUTH_TEST_POSTGRES_URL");
  ASSERT_NE(env, nullptr) << "run through ctest: it starts the server";
  const std::string saved = env;
  ::unsetenv("AMOAUTH_TEST_POSTGRES_URL");
  try {
    ScratchDatabase db;
    ADD_FAILURE() << "a database without a server";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("ctest"), std::string::npos) << e.what();
  }
  ::setenv("AMOAUTH_TEST_POSTGRES_URL", saved.c_str(), 1);
}

TEST(ScratchPostgres, ServesAgainAfterARestartAndIsRemovedAtTheEnd) {
  std::filesystem::path dir;
  {
    ScratchPostgres server;
    dir = server.Dir();
    EXPECT_EQ(server.Url(), "postgresql://postgres@/postgres?host=" + dir.string());
    ScratchDatabase db(server.Url());
    {
      auto c = Connect(db.Url());
      ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK) << PQerrorMessage(c.get());
      ASSERT_TRUE(Runs(c.get(), "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)"))
          << PQerrorMessage(c.get());
    }

    auto open = Connect(db.Url());
    ASSERT_EQ(PQstatus(open.get()), CONNECTION_OK);
    server.Stop();
    EXPECT_NE(PQstatus(Connect(db.Url()).get()), CONNECTION_OK) << "stopped means refusing";
    server.Start();
    // The old session was cut by the stop; a new one sees the data.
    EXPECT_FALSE(Runs(open.get(), "SELECT 1"));
    auto again = Connect(db.Url());
    ASSERT_EQ(PQstatus(again.get()), CONNECTION_OK) << PQerrorMessage(again.get());
    EXPECT_EQ(QueryOne(again.get(), "SELECT v FROM kept"), "42");

    server.Restart();
    auto after_restart = Connect(db.Url());
    ASSERT_EQ(PQstatus(after_restart.get()), CONNECTION_OK) << PQerrorMessage(after_restart.get());
    EXPECT_EQ(QueryOne(after_restart.get(), "SELECT v FROM kept"), "42");
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
}

}  // namespace
