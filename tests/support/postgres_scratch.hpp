#pragma once

#include <filesystem>
#include <string>

/// PostgreSQL for tests (docs/testing in README.md): a database of one's own on the shared scratch
/// server that ctest's `postgres` fixture starts, or a private server a test may stop and restart.
/// Both come from scripts/postgres-scratch.sh: Unix socket only, no fsync, trust authentication.
namespace amoauth::testing {

/// A fresh, empty database (t_<16 random hex digits>) on the server named by the environment
/// variable AMOAUTH_TEST_POSTGRES_URL (set by ctest for tests declared with amoauth_add_test(...
/// POSTGRES)), dropped again, with any sessions still on it, at destruction.
/// Throws std::runtime_error, saying why, when the variable is missing (run the test through
/// ctest) or the server refuses: a test that needs PostgreSQL fails, it never skips.
class ScratchDatabase {
 public:
  ScratchDatabase();
  /// On the server at `server_url` (a libpq URI) instead of the environment's.
  explicit ScratchDatabase(std::string server_url);
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;
  ~ScratchDatabase();

  /// postgresql://postgres@/t_…?host=…: the server's URL with this database in its path.
  [[nodiscard]] const std::string& Url() const { return url_; }
  [[nodiscard]] const std::string& Name() const { return name_; }

 private:
  std::string server_url_;
  std::string name_;
  std::string url_;
};

/// A PostgreSQL server of the test's own in a fresh temporary directory, for tests that stop or
/// restart it (reconnection). Started by the constructor; stopped and its directory removed by
/// the destructor. Throws std::runtime_error, with the script's words, when a step fails.
class ScratchPostgres {
 public:
  ScratchPostgres();
  ScratchPostgres(const ScratchPostgres&) = delete;
  ScratchPostgres& operator=(const ScratchPostgres&) = delete;
  ~ScratchPostgres();

  void Start();
  void Stop();
  void Restart();
  /// postgresql://postgres@/postgres?host=DIR (the same while stopped and after a restart).
  [[nodiscard]] const std::string& Url() const { return url_; }
  [[nodiscard]] const std::filesystem::path& Dir() const { return dir_; }

 private:
  /// Runs scripts/postgres-scratch.sh `action` on dir_ and returns what it printed.
  std::string Script(const std::string& action);

  std::filesystem::path dir_;
  std::string url_;
};

}  // namespace amoauth::testing
