#include "postgres_scratch.hpp"

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <fmt/format.h>
#include <libpq-fe.h>

#include "amoauth/crypto/random_bytes.hpp"

namespace amoauth::testing {

namespace {

constexpr const char* kUrlVariable = "AMOAUTH_TEST_POSTGRES_URL";

struct ConnectionCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Connection = std::unique_ptr<PGconn, ConnectionCloser>;

Connection Connect(const std::string& url) {
  Connection c(PQconnectdb(url.c_str()));
  if (PQstatus(c.get()) != CONNECTION_OK) {
    throw std::runtime_error("cannot connect to the test PostgreSQL at " + url + ": " +
                             PQerrorMessage(c.get()));
  }
  return c;
}

void Exec(PGconn* c, const std::string& sql) {
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c, sql.c_str()), &PQclear);
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    throw std::runtime_error(sql + ": " + PQerrorMessage(c));
  }
}

std::string RandomName() {
  std::array<std::uint8_t, 8> bytes{};
  crypto::FillRandom(bytes);
  std::string name = "t_";
  for (const auto b : bytes) {
    name += fmt::format("{:02x}", b);
  }
  return name;
}

std::string ServerUrlFromEnvironment() {
  const char* url = std::getenv(kUrlVariable);
  if (url == nullptr || *url == '\0') {
    throw std::runtime_error(
        std::string(kUrlVariable) +
        " is not set: this test needs the scratch PostgreSQL that ctest starts (fixture "
        "`postgres`). Run it through ctest, e.g. `ctest --test-dir build -R <test>`, or start "
        "one with `scripts/postgres-scratch.sh start DIR` and export the URL it prints.");
  }
  return url;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (const char ch : s) {
    if (ch == '\'') {
      out += "'\\''";
    } else {
      out += ch;
    }
  }
  return out + "'";
}

}  // namespace

ScratchDatabase::ScratchDatabase() : ScratchDatabase(ServerUrlFromEnvironment()) {}

ScratchDatabase::ScratchDatabase(std::string server_url)
    : server_url_(std::move(server_url)), name_(RandomName()) {
  auto parsed = boost::urls::parse_uri(server_url_);
  if (!parsed) {
    throw std::runtime_error("not a PostgreSQL URL: " + server_url_);
  }
  boost::urls::url url = *parsed;
  url.set_path("/" + name_);
  url_ = std::string(url.buffer());
  auto c = Connect(server_url_);
  Exec(c.get(), "CREATE DATABASE " + name_);
}

ScratchDatabase::~ScratchDatabase() {
  try {
    auto c = Connect(server_url_);
    Exec(c.get(), "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ScratchDatabase: could not drop %s: %s\n", name_.c_str(), e.what());
  }
}

ScratchPostgres::ScratchPostgres() {
  // Short and under /tmp: the socket path (DIR/.s.PGSQL.5432) must fit in 107 bytes, and the
  // `postgres` user must reach it when the tests run as root.
  std::string pattern = "/tmp/amoauth-pg-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  }
  dir_ = pattern;
  Start();
}

ScratchPostgres::~ScratchPostgres() {
  try {
    Stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ScratchPostgres: %s\n", e.what());
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void ScratchPostgres::Start() {
  std::string printed = Script("start");
  while (!printed.empty() && (printed.back() == '\n' || printed.back() == '\r')) {
    printed.pop_back();
  }
  url_ = std::move(printed);
}

void ScratchPostgres::Stop() {
  Script("stop");
}

void ScratchPostgres::Restart() {
  Stop();
  Start();
}

std::string ScratchPostgres::Script(const std::string& action) {
  const std::string command =
      ShellQuote(AMOAUTH_POSTGRES_SCRATCH_SCRIPT) + " " + action + " " + ShellQuote(dir_.string());
  std::unique_ptr<FILE, decltype(&::pclose)> pipe(::popen(command.c_str(), "r"), &::pclose);
  if (!pipe) {
    throw std::system_error(errno, std::generic_category(), "popen " + command);
  }
  std::string output;
  std::array<char, 512> buffer{};
  while (std::fgets(buffer.data(), static_cast<int>(buffer.size()), pipe.get()) != nullptr) {
    output += buffer.data();
  }
  const int status = ::pclose(pipe.release());
  if (status != 0) {
    throw std::runtime_error("postgres-scratch.sh " + action + " " + dir_.string() +
                             " failed (its message is above in the test's output)");
  }
  return output;
}

}  // namespace amoauth::testing
