#include "process_harness.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AMOAUTH_BINARY
#error "AMOAUTH_BINARY must name the built amoauth executable (tests/integration/CMakeLists.txt)"
#endif

namespace amoauth::testing {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

/// The client's budget for one request; amoauth's own upstream budget is 15 s by default.
constexpr std::chrono::seconds kRequestTimeout{20};

std::filesystem::path MakeTempDir() {
  static std::atomic<int> counter{0};
  auto dir = std::filesystem::temp_directory_path() /
             ("amoauth-proc-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::vector<unsigned char> RandomBytes(std::size_t n) {
  std::vector<unsigned char> out(n);
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  return out;
}

std::string Base64(const std::vector<unsigned char>& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(
      reinterpret_cast<unsigned char*>(out.data()), bytes.data(), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string Hex(const std::vector<unsigned char>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0x0f];
  }
  return out;
}

std::string Tail(const std::filesystem::path& path, std::size_t lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return "(no " + path.filename().string() + ")";
  }
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(std::move(line));
    if (last.size() > lines) {
      last.pop_front();
    }
  }
  std::string out;
  for (const auto& l : last) {
    out += "    | " + l + "\n";
  }
  return out.empty() ? std::string("    (empty)\n") : out;
}

std::string StatusText(int wait_status) {
  if (WIFEXITED(wait_status)) {
    return "exited with code " + std::to_string(WEXITSTATUS(wait_status));
  }
  if (WIFSIGNALED(wait_status)) {
    return "killed by signal " + std::to_string(WTERMSIG(wait_status)) + " (" +
           ::strsignal(WTERMSIG(wait_status)) + ")";
  }
  return "wait status " + std::to_string(wait_status);
}

/// The build's amoauth, or another binary named by AMOAUTH_PROCESS_TESTS_BINARY (a release build,
/// a colleague's branch) for running these tests against it.
std::string Binary() {
  const char* other = std::getenv("AMOAUTH_PROCESS_TESTS_BINARY");
  return other != nullptr && *other != '\0' ? std::string(other) : std::string(AMOAUTH_BINARY);
}

CallResult ToCallResult(Result<net::HttpResponse> r) {
  CallResult out;
  if (!r) {
    out.error = r.error().message();
    return out;
  }
  out.status = r->status;
  out.body = std::move(r->body);
  out.headers = std::move(r->headers);
  return out;
}

}  // namespace

// --- IoThreads -----------------------------------------------------------------------------------

IoThreads::IoThreads(int threads) : work_(asio::make_work_guard(ioc_)) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { ioc_.run(); });
  }
}

IoThreads::~IoThreads() {
  Stop();
}

void IoThreads::Stop() {
  work_.reset();
  ioc_.stop();
  for (auto& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
}

// --- BlockingHttp --------------------------------------------------------------------------------

BlockingHttp::BlockingHttp()
    : BlockingHttp(http_client::ClientOptions{.timeout = kRequestTimeout}) {}

BlockingHttp::BlockingHttp(http_client::ClientOptions options) : io_(1) {
  auto client = http_client::HttpClient::Create(io_.Context().get_executor(), std::move(options));
  if (!client) {
    throw std::runtime_error("test HTTP client: " + client.error().message());
  }
  client_ = std::move(*client);
}

BlockingHttp::~BlockingHttp() {
  io_.Stop();
}

CallResult BlockingHttp::Send(http_client::ClientRequest request) {
  std::vector<http_client::ClientRequest> one;
  one.push_back(std::move(request));
  return std::move(SendAll(std::move(one)).front());
}

std::vector<CallResult> BlockingHttp::SendAll(std::vector<http_client::ClientRequest> requests) {
  std::vector<std::future<Result<net::HttpResponse>>> pending;
  pending.reserve(requests.size());
  for (auto& request : requests) {
    pending.push_back(
        asio::co_spawn(io_.Context(), client_->Send(std::move(request)), asio::use_future));
  }
  // The client bounds every request; the margin only guards against a lost completion.
  const auto deadline = Clock::now() + kRequestTimeout + std::chrono::seconds(5);
  std::vector<CallResult> out;
  out.reserve(pending.size());
  for (auto& f : pending) {
    if (f.wait_until(deadline) != std::future_status::ready) {
      out.push_back({.error = "no answer and no error within the client's deadline"});
      continue;
    }
    try {
      out.push_back(ToCallResult(f.get()));
    } catch (const std::exception& e) {
      out.push_back({.error = std::string("exception: ") + e.what()});
    }
  }
  return out;
}

// --- LatencyRelay --------------------------------------------------------------------------------

namespace {

using Tcp = asio::ip::tcp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

void LogRelayFailure(const std::exception_ptr& e) {
  if (!e) {
    return;
  }
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::cerr << "[latency relay] " << ex.what() << "\n";
  }
}

/// Copies `from` to `to` until either side ends, then closes both (the other pump then ends).
/// Both pumps of a connection run on one strand, so the close never races their operations.
asio::awaitable<void> Pump(Tcp::socket& from, Tcp::socket& to) {
  std::array<char, 16 * 1024> buffer{};
  for (;;) {
    auto [read_error, n] = co_await from.async_read_some(asio::buffer(buffer), kUseTuple);
    if (read_error) {
      break;
    }
    auto [write_error, written] =
        co_await asio::async_write(to, asio::buffer(buffer.data(), n), kUseTuple);
    if (write_error) {
      break;
    }
  }
  boost::system::error_code ignored;
  from.close(ignored);
  to.close(ignored);
}

asio::awaitable<void> RelayConnection(Tcp::socket client,
                                      Tcp::endpoint upstream,
                                      std::chrono::milliseconds latency) {
  using namespace asio::experimental::awaitable_operators;  // NOLINT(google-build-using-namespace)
  asio::steady_timer timer(client.get_executor(), latency);
  co_await timer.async_wait(kUseTuple);
  Tcp::socket server(client.get_executor());
  auto [connect_error] = co_await server.async_connect(upstream, kUseTuple);
  if (connect_error) {
    co_return;
  }
  co_await (Pump(client, server) && Pump(server, client));
}

asio::awaitable<void> AcceptLoop(std::shared_ptr<Tcp::acceptor> acceptor,
                                 Tcp::endpoint upstream,
                                 std::chrono::milliseconds latency) {
  for (;;) {
    asio::any_io_executor strand = asio::make_strand(acceptor->get_executor());
    auto [error, client] = co_await acceptor->async_accept(strand, kUseTuple);
    if (error) {
      co_return;  // closed, or the io_context stopped
    }
    asio::co_spawn(strand, RelayConnection(std::move(client), upstream, latency), LogRelayFailure);
  }
}

}  // namespace

/// A TCP relay on 127.0.0.1:0 to `upstream` that waits `latency` before connecting each accepted
/// connection onwards. Runs on the given executor until that stops.
class LatencyRelay final {
 public:
  LatencyRelay(asio::any_io_executor executor,
               const std::string& upstream_host_port,
               std::chrono::milliseconds latency)
      : acceptor_(std::make_shared<Tcp::acceptor>(executor)) {
    const auto colon = upstream_host_port.rfind(':');
    const Tcp::endpoint upstream(
        asio::ip::make_address(upstream_host_port.substr(0, colon)),
        static_cast<std::uint16_t>(std::stoi(upstream_host_port.substr(colon + 1))));
    const Tcp::endpoint local(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_->open(local.protocol());
    acceptor_->bind(local);
    acceptor_->listen();
    connect_to_ = "127.0.0.1:" + std::to_string(acceptor_->local_endpoint().port());
    asio::co_spawn(executor, AcceptLoop(acceptor_, upstream, latency), LogRelayFailure);
  }

  /// "127.0.0.1:{port}": what AMOAUTH_AMO_CONNECT_TO names instead of the sandbox.
  [[nodiscard]] const std::string& ConnectTo() const { return connect_to_; }

 private:
  std::shared_ptr<Tcp::acceptor> acceptor_;
  std::string connect_to_;
};

// --- ProcessHarness ------------------------------------------------------------------------------

struct ProcessHarness::Process {
  Environment env;  ///< complete environment of the next start
  pid_t pid = -1;
  int pidfd = -1;
  std::string base_url;
  std::filesystem::path ready_file;
  std::filesystem::path stdout_file;
  std::filesystem::path stderr_file;
  int starts = 0;

  [[nodiscard]] bool Alive() const { return pid > 0; }

  /// Reaps the process if it has exited, waiting at most `timeout`. True once it is gone.
  bool WaitExit(std::chrono::milliseconds timeout, int& wait_status) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const pid_t r = ::waitpid(pid, &wait_status, WNOHANG);
      if (r == pid || (r < 0 && errno == ECHILD)) {
        if (r < 0) {
          wait_status = 0;
        }
        if (pidfd >= 0) {
          ::close(pidfd);
        }
        pidfd = -1;
        pid = -1;
        base_url.clear();
        return true;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        return false;
      }
      // The pidfd becomes readable the moment the process exits: no polling interval. Without
      // one (old kernel), look again every 5 ms.
      pollfd p{.fd = pidfd, .events = POLLIN, .revents = 0};
      const int ms = static_cast<int>(std::min<long long>(left.count(), 1000));
      ::poll(&p, pidfd >= 0 ? 1 : 0, pidfd >= 0 ? ms : std::min(ms, 5));
    }
  }
};

ProcessHarness::ProcessHarness(Options options) : options_(std::move(options)) {
  try {
    Init();
  } catch (...) {
    Shutdown();
    throw;
  }
}

ProcessHarness::~ProcessHarness() {
  Shutdown();
}

void ProcessHarness::Init() {
  dir_ = MakeTempDir();
  api_key_ = "proc-" + Hex(RandomBytes(16));
  master_key_ = Base64(RandomBytes(32));

  sandbox_io_ = std::make_unique<IoThreads>(2);
  sandbox::Options sandbox_options = options_.sandbox;
  sandbox_options.state_dir = dir_.string();
  auto started =
      sandbox::Sandbox::Start(sandbox_io_->Context().get_executor(), std::move(sandbox_options));
  if (!started) {
    throw std::runtime_error("sandbox: " + started.error().message());
  }
  sandbox_ = std::move(*started);
  integration_ = sandbox_->AddIntegration({.redirect_uri = kRedirectUri});
  std::string connect_to = sandbox_->ConnectTo();
  if (options_.amo_latency.count() > 0) {
    relay_ = std::make_unique<LatencyRelay>(
        sandbox_io_->Context().get_executor(), connect_to, options_.amo_latency);
    connect_to = relay_->ConnectTo();
  }
  http_ = std::make_unique<BlockingHttp>();

  // Read by `serve` instead of ./.env, so nothing from the developer's tree leaks in.
  std::ofstream(dir_ / "empty.env").close();

  Environment base{
      {"AMO_CLIENT_ID", integration_.client_id},
      {"AMO_CLIENT_SECRET", integration_.client_secret},
      {"AMO_REDIRECT_URI", kRedirectUri},
      {"AMOAUTH_CALLBACK_PATH", kCallbackPath},
      {"AMOAUTH_LISTEN", "127.0.0.1:0"},
      {"AMOAUTH_DATABASE_URL", DatabaseUrl()},
      {"AMOAUTH_API_KEY", api_key_},
      {"AMOAUTH_MASTER_KEY", master_key_},
      {"AMOAUTH_AMO_CONNECT_TO", connect_to},
      {"AMOAUTH_AMO_CA_FILE", sandbox_->CaFile()},
      {"AMOAUTH_LOG_LEVEL", options_.log_level},
      // Below Stop()'s default 10 s: a drain that waits out its whole grace still exits in time.
      {"AMOAUTH_SHUTDOWN_GRACE_MS", "5000"},
  };
  // Sanitizer builds: the children report like the test does.
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS"}) {
    if (const char* value = std::getenv(name); value != nullptr) {
      base.emplace_back(name, value);
    }
  }

  for (std::size_t i = 0; i < options_.processes; ++i) {
    auto p = std::make_unique<Process>();
    p->env = base;
    const std::string stem = "amoauth-" + std::to_string(i);
    p->ready_file = dir_ / (stem + ".ready.json");
    p->stdout_file = dir_ / (stem + ".stdout");
    p->stderr_file = dir_ / (stem + ".stderr");
    processes_.push_back(std::move(p));
    for (const auto& [name, value] : options_.extra_env) {
      SetEnv(i, name, value);
    }
  }
  // By default the first process creates the database (schema, WAL mode) before the others
  // start: two processes opening a new file at the same moment can fail with "database is
  // locked" (see Options::start_together).
  for (std::size_t i = 0; i < processes_.size(); ++i) {
    Spawn(i);
    if (i == 0 && !options_.start_together) {
      WaitReady(0);
    }
  }
  for (std::size_t i = options_.start_together ? 0 : 1; i < processes_.size(); ++i) {
    WaitReady(i);
  }
}

void ProcessHarness::Shutdown() noexcept {
  if (shut_down_) {
    return;
  }
  shut_down_ = true;
  for (auto& p : processes_) {
    if (p->Alive()) {
      ::kill(p->pid, SIGKILL);
      int status = 0;
      if (!p->WaitExit(std::chrono::seconds(5), status)) {
        std::cerr << "[process harness] pid " << p->pid << " survived SIGKILL for 5 s\n";
      }
    }
  }
  // A harness call that threw is unwinding the test right now; gtest records it only afterwards.
  const bool failed = ::testing::Test::HasFailure() || std::uncaught_exceptions() > 0;
  for (std::size_t i = 0; failed && options_.print_output_on_failure && i < processes_.size();
       ++i) {
    const auto& p = *processes_[i];
    std::cerr << "[process harness] amoauth process " << i << " (" << p.starts
              << " start(s)), stdout tail:\n"
              << Tail(p.stdout_file, 20) << "[process harness] amoauth process " << i
              << ", stderr tail:\n"
              << Tail(p.stderr_file, 60);
  }
  if (sandbox_) {
    sandbox_->Stop();
  }
  http_.reset();
  if (sandbox_io_) {
    sandbox_io_->Stop();
  }
  relay_.reset();
  sandbox_.reset();
  sandbox_io_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

ProcessHarness::Process& ProcessHarness::At(std::size_t i) const {
  if (i >= processes_.size()) {
    throw std::out_of_range("no amoauth process " + std::to_string(i));
  }
  return *processes_[i];
}

void ProcessHarness::SetEnv(std::size_t i, const std::string& name, const std::string& value) {
  auto& env = At(i).env;
  auto it = std::find_if(env.begin(), env.end(), [&](const auto& kv) { return kv.first == name; });
  if (it == env.end()) {
    env.emplace_back(name, value);
  } else {
    it->second = value;
  }
}

const Environment& ProcessHarness::Env(std::size_t i) const {
  return At(i).env;
}

void ProcessHarness::Spawn(std::size_t i) {
  Process& p = At(i);
  if (p.Alive()) {
    throw std::logic_error("amoauth process " + std::to_string(i) + " is already running");
  }
  std::filesystem::remove(p.ready_file);

  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  const std::string binary = Binary();
  std::vector<std::string> args{binary,
                                "serve",
                                "--env-file",
                                (dir_ / "empty.env").string(),
                                "--ready-file",
                                p.ready_file.string()};
  std::vector<std::string> env_strings;
  env_strings.reserve(p.env.size());
  for (const auto& [name, value] : p.env) {
    env_strings.push_back(name + "=" + value);
  }
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env_strings) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  const std::string out_path = p.stdout_file.string();
  const std::string err_path = p.stderr_file.string();
  const std::string work_dir = dir_.string();
  const std::string banner = "---- start " + std::to_string(p.starts + 1) + " ----\n";
  for (const auto& path : {p.stdout_file, p.stderr_file}) {
    std::ofstream(path, std::ios::app) << banner;
  }

  int exec_error[2];
  if (::pipe2(exec_error, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(exec_error[0]);
    ::close(exec_error[1]);
    throw std::runtime_error(std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    // The child dies with this (forking) thread, so a crashed or killed test leaves nothing.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(127);
    }
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    int failure = 0;
    if (in < 0 || out < 0 || err < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 ||
        ::dup2(err, 2) < 0 || ::chdir(work_dir.c_str()) != 0) {
      failure = errno;
    }
    if (failure == 0) {
      // Not the test's signal mask or dispositions, and none of its sockets or files.
      sigset_t none;
      ::sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      struct sigaction default_action {};
      for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD}) {
        ::sigaction(sig, &default_action, nullptr);
      }
      ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
      ::execve(argv[0], argv.data(), envp.data());
      failure = errno;
    }
    [[maybe_unused]] auto n = ::write(exec_error[1], &failure, sizeof failure);
    ::_exit(127);
  }
  ::close(exec_error[1]);
  int child_error = 0;
  ssize_t n = 0;
  do {
    n = ::read(exec_error[0], &child_error, sizeof child_error);
  } while (n < 0 && errno == EINTR);
  ::close(exec_error[0]);
  p.pid = pid;
  // -1 on kernels before 5.3: WaitExit then polls. (Debian 12's <sys/pidfd.h> lacks extern "C".)
  p.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U));
  ++p.starts;
  if (n > 0) {
    int status = 0;
    p.WaitExit(std::chrono::seconds(5), status);
    throw std::runtime_error("cannot start " + binary + ": " + std::strerror(child_error));
  }
}

void ProcessHarness::WaitReady(std::size_t i) {
  Process& p = At(i);
  const auto deadline = Clock::now() + options_.start_timeout;
  for (;;) {
    std::ifstream in(p.ready_file, std::ios::binary);
    if (in) {
      std::stringstream text;
      text << in.rdbuf();
      boost::system::error_code ec;
      auto v = boost::json::parse(text.str(), ec);  // the file may still be half written
      if (!ec && v.is_object() && v.as_object().contains("url")) {
        const auto& ready = v.as_object();
        p.base_url = std::string(ready.at("url").as_string());
        if (const auto* r = ready.if_contains("redirect_uri");
            r != nullptr && r->is_string() && r->as_string() != kRedirectUri) {
          throw std::runtime_error("amoauth process " + std::to_string(i) + " uses Redirect URI " +
                                   boost::json::serialize(*r));
        }
        return;
      }
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      throw std::runtime_error("amoauth process " + std::to_string(i) + " (pid " +
                               std::to_string(p.pid) + ") wrote no ready file within " +
                               std::to_string(options_.start_timeout.count()) + " ms; stderr:\n" +
                               Tail(p.stderr_file, 40));
    }
    // Waits on the process's exit (pidfd) for at most 10 ms: an exit is seen at once.
    int status = 0;
    if (p.WaitExit(std::min(left, std::chrono::milliseconds(10)), status)) {
      throw std::runtime_error("amoauth process " + std::to_string(i) + " " + StatusText(status) +
                               " before it was ready; stderr:\n" + Tail(p.stderr_file, 40));
    }
  }
}

bool ProcessHarness::Running(std::size_t i) const {
  return At(i).Alive();
}

std::string ProcessHarness::BaseUrl(std::size_t i) const {
  const Process& p = At(i);
  if (!p.Alive() || p.base_url.empty()) {
    throw std::runtime_error("amoauth process " + std::to_string(i) + " is not running");
  }
  return p.base_url;
}

int ProcessHarness::Kill(std::size_t i, int signal) {
  Process& p = At(i);
  if (!p.Alive()) {
    throw std::logic_error("amoauth process " + std::to_string(i) + " is not running");
  }
  ::kill(p.pid, signal);
  int status = 0;
  if (!p.WaitExit(std::chrono::seconds(10), status)) {
    ADD_FAILURE() << "amoauth process " << i << " outlived signal " << signal
                  << " for 10 s; killing it";
    ::kill(p.pid, SIGKILL);
    p.WaitExit(std::chrono::seconds(5), status);
  }
  return status;
}

int ProcessHarness::Stop(std::size_t i, std::chrono::milliseconds grace) {
  Process& p = At(i);
  if (!p.Alive()) {
    throw std::logic_error("amoauth process " + std::to_string(i) + " is not running");
  }
  ::kill(p.pid, SIGTERM);
  int status = 0;
  if (!p.WaitExit(grace, status)) {
    ADD_FAILURE() << "amoauth process " << i << " did not stop within " << grace.count()
                  << " ms of SIGTERM; killing it";
    ::kill(p.pid, SIGKILL);
    p.WaitExit(std::chrono::seconds(5), status);
  }
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

void ProcessHarness::Signal(std::size_t i, int signal) {
  Process& p = At(i);
  if (!p.Alive()) {
    throw std::logic_error("amoauth process " + std::to_string(i) + " is not running");
  }
  ::kill(p.pid, signal);
}

std::optional<int> ProcessHarness::WaitExit(std::size_t i, std::chrono::milliseconds timeout) {
  Process& p = At(i);
  if (!p.Alive()) {
    throw std::logic_error("amoauth process " + std::to_string(i) + " is not running");
  }
  int status = 0;
  if (!p.WaitExit(timeout, status)) {
    return std::nullopt;
  }
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

void ProcessHarness::Restart(std::size_t i) {
  if (Running(i)) {
    Stop(i);
  }
  Spawn(i);
  WaitReady(i);
}

std::string ProcessHarness::StderrTail(std::size_t i, std::size_t lines) const {
  return Tail(At(i).stderr_file, lines);
}

CallResult ProcessHarness::Call(std::size_t i,
                                std::string method,
                                const std::string& target,
                                std::string body,
                                bool with_api_key) {
  http_client::ClientRequest request{
      .method = std::move(method), .url = BaseUrl(i) + target, .body = std::move(body)};
  if (with_api_key) {
    request.headers.Set("Authorization", "Bearer " + api_key_);
  }
  if (!request.body.empty()) {
    request.headers.Set("Content-Type", "application/json");
  }
  return http_->Send(std::move(request));
}

std::vector<CallResult> ProcessHarness::CallConcurrently(const std::vector<ProcessCall>& calls) {
  std::vector<http_client::ClientRequest> requests;
  requests.reserve(calls.size());
  for (const auto& c : calls) {
    http_client::ClientRequest request{
        .method = c.method, .url = BaseUrl(c.process) + c.target, .body = c.body};
    request.headers.Set("Authorization", "Bearer " + api_key_);
    if (!request.body.empty()) {
      request.headers.Set("Content-Type", "application/json");
    }
    requests.push_back(std::move(request));
  }
  return http_->SendAll(std::move(requests));
}

std::vector<CallResult> ProcessHarness::GetConcurrently(const std::string& target,
                                                        std::size_t count) {
  std::vector<std::size_t> running;
  for (std::size_t i = 0; i < processes_.size(); ++i) {
    if (processes_[i]->Alive()) {
      running.push_back(i);
    }
  }
  if (running.empty()) {
    throw std::logic_error("no amoauth process is running");
  }
  std::vector<ProcessCall> calls;
  for (std::size_t k = 0; k < count; ++k) {
    calls.push_back({.process = running[k % running.size()], .target = target});
  }
  return CallConcurrently(calls);
}

http_client::ClientOptions ProcessHarness::SandboxTlsOptions() const {
  return {.connect_to = sandbox_->ConnectTo(),
          .ca_file = sandbox_->CaFile(),
          .timeout = kRequestTimeout};
}

std::string ProcessHarness::DatabaseUrl() const {
  return options_.database_url.empty() ? "sqlite://" + DatabasePath() : options_.database_url;
}

CallResult ProcessHarness::Get(const std::string& url) {
  return http_->Send({.method = "GET", .url = url});
}

CallResult ProcessHarness::SandboxPost(const std::string& path,
                                       const std::string& content_type,
                                       std::string body) {
  http_client::ClientRequest request{
      .method = "POST", .url = sandbox_->BrowserBaseUrl() + path, .body = std::move(body)};
  request.headers.Set("Content-Type", content_type);
  return http_->Send(std::move(request));
}

boost::json::object ProcessHarness::SandboxCounters() {
  auto r = Get(sandbox_->BrowserBaseUrl() + "/sandbox/journal");
  if (r.status != 200) {
    throw std::runtime_error("GET /sandbox/journal: " + std::to_string(r.status) + " " + r.body +
                             r.error);
  }
  return boost::json::parse(r.body).as_object().at("counters").as_object();
}

std::int64_t ProcessHarness::SandboxCounter(const std::string& name) {
  return SandboxCounters().at(name).to_number<std::int64_t>();
}

std::string ProcessHarness::ConsentRedirectQuery(std::size_t i, std::int64_t account_id) {
  const std::string where = "connect on amoauth process " + std::to_string(i) + ": ";
  auto started = Call(i, "POST", "/v1/connect", R"({"mode":"post_message"})");
  if (started.status != 201) {
    throw std::runtime_error(where + "POST /v1/connect: " + std::to_string(started.status) + " " +
                             started.body + started.error + "\nstderr:\n" + StderrTail(i));
  }
  const std::string state(boost::json::parse(started.body).as_object().at("state").as_string());

  boost::urls::url form;
  form.params().append({"client_id", integration_.client_id});
  form.params().append({"state", state});
  form.params().append({"mode", "post_message"});
  form.params().append({"account_id", std::to_string(account_id)});
  form.params().append({"decision", "allow"});
  auto decided = SandboxPost(
      "/oauth/decision", "application/x-www-form-urlencoded", std::string(form.encoded_query()));
  const auto location = decided.headers.Get("Location");
  if (decided.status != 302 || !location) {
    throw std::runtime_error(where + "consent decision: " + std::to_string(decided.status) + " " +
                             decided.body + decided.error);
  }
  // Location is kRedirectUri?code=…&referer=…&state=…&platform=1: deliver it to process i.
  auto parsed = boost::urls::parse_absolute_uri(*location);
  if (!parsed || parsed->path() != kCallbackPath) {
    throw std::runtime_error(where + "unexpected Location " + std::string(*location));
  }
  return std::string(parsed->encoded_query());
}

std::string ProcessHarness::WidgetHookQuery(std::size_t i, std::int64_t account_id) {
  boost::urls::url redirect;
  redirect.set_encoded_query(ConsentRedirectQuery(i, account_id));
  boost::urls::url hook;
  for (const auto& param : redirect.params()) {
    if (param.key == "code" || param.key == "referer") {
      hook.params().append({param.key, param.value});
    }
  }
  hook.params().append({"from_widget", "1"});
  return std::string(hook.encoded_query());
}

std::int64_t ProcessHarness::Connect(std::size_t i, std::int64_t account_id) {
  const std::string where = "connect on amoauth process " + std::to_string(i) + ": ";
  const std::string callback =
      BaseUrl(i) + kCallbackPath + "?" + ConsentRedirectQuery(i, account_id);
  auto page = Get(callback);
  if (page.status != 200) {
    throw std::runtime_error(where + "callback: " + std::to_string(page.status) + " " + page.body +
                             page.error + "\nstderr:\n" + StderrTail(i));
  }
  return account_id;
}

std::string ProcessHarness::AccessToken(std::size_t i, std::int64_t account_id) {
  auto r = Call(i, "GET", "/v1/accounts/" + std::to_string(account_id) + "/token");
  if (r.status != 200) {
    throw std::runtime_error("GET /token on amoauth process " + std::to_string(i) + ": " +
                             std::to_string(r.status) + " " + r.body + r.error + "\nstderr:\n" +
                             StderrTail(i));
  }
  return std::string(boost::json::parse(r.body).as_object().at("access_token").as_string());
}

int ProcessHarness::ExpireAccessTokens() {
  sqlite3* db = nullptr;
  const int opened = sqlite3_open_v2(DatabasePath().c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> guard(db, &sqlite3_close);
  if (opened != SQLITE_OK) {
    throw std::runtime_error("open " + DatabasePath() + ": " + sqlite3_errstr(opened));
  }
  sqlite3_busy_timeout(db, 5000);  // the processes write the same file
  char* message = nullptr;
  const int rc = sqlite3_exec(db,
                              R"(UPDATE amo_tokens SET "expiresAt" = '2000-01-01T00:00:00Z')",
                              nullptr,
                              nullptr,
                              &message);
  if (rc != SQLITE_OK) {
    std::string text = message != nullptr ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    throw std::runtime_error("expire tokens: " + text);
  }
  return sqlite3_changes(db);
}

std::vector<std::string> ProcessHarness::LeaseHolders() {
  sqlite3* db = nullptr;
  const int opened = sqlite3_open_v2(DatabasePath().c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> guard(db, &sqlite3_close);
  if (opened != SQLITE_OK) {
    throw std::runtime_error("open " + DatabasePath() + ": " + sqlite3_errstr(opened));
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, R"(SELECT "holder" FROM refresh_leases)", -1, &stmt, nullptr) !=
      SQLITE_OK) {
    throw std::runtime_error(std::string("read refresh_leases: ") + sqlite3_errmsg(db));
  }
  std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> statement(stmt, &sqlite3_finalize);
  std::vector<std::string> holders;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    holders.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
  }
  return holders;
}

// --- WebhookReceiver -----------------------------------------------------------------------------

namespace {

asio::awaitable<net::HttpResponse> ReceiveWebhook(
    std::function<net::HttpResponse(const net::HttpRequest&)> record, net::HttpRequest request) {
  co_return record(request);
}

}  // namespace

WebhookReceiver::WebhookReceiver() : io_(1) {
  std::function<net::HttpResponse(const net::HttpRequest&)> record =
      [this](const net::HttpRequest& r) { return Record(r); };
  http_server::Handler handler = [record](net::HttpRequest request) {
    return ReceiveWebhook(record, std::move(request));
  };
  server_ = std::make_unique<http_server::HttpServer>(
      io_.Context().get_executor(),
      http_server::ServerOptions{.log_name = "webhook-receiver"},
      std::move(handler));
  auto port = server_->Listen("127.0.0.1", 0);
  if (!port) {
    throw std::runtime_error("webhook receiver: " + port.error().message());
  }
  url_ = "http://127.0.0.1:" + std::to_string(*port) + "/hooks/amoauth";
  server_->Start();
}

WebhookReceiver::~WebhookReceiver() {
  server_->Stop();
  io_.Stop();
}

net::HttpResponse WebhookReceiver::Record(const net::HttpRequest& request) {
  std::lock_guard lock(mutex_);
  if (request.method != "POST") {
    return net::HttpResponse::Text(405, "POST only\n");
  }
  deliveries_.push_back({.target = request.target,
                         .headers = request.headers,
                         .body = request.body,
                         .answered = answer_});
  changed_.notify_all();
  return net::HttpResponse::Text(answer_, answer_ < 300 ? "ok\n" : "failing on purpose\n");
}

void WebhookReceiver::AnswerWith(int status) {
  std::lock_guard lock(mutex_);
  answer_ = status;
}

std::vector<WebhookDelivery> WebhookReceiver::Deliveries() const {
  std::lock_guard lock(mutex_);
  return deliveries_;
}

::testing::AssertionResult WebhookReceiver::WaitUntil(const Predicate& predicate,
                                                      std::chrono::milliseconds timeout,
                                                      const std::string& what) const {
  std::unique_lock lock(mutex_);
  if (changed_.wait_for(lock, timeout, [&] { return predicate(deliveries_); })) {
    return ::testing::AssertionSuccess();
  }
  auto failure = ::testing::AssertionFailure();
  failure << "no " << what << " within " << timeout.count() << " ms; " << deliveries_.size()
          << " POST(s) arrived:";
  for (const auto& d : deliveries_) {
    failure << "\n  answered " << d.answered << ": " << d.body;
  }
  return failure;
}

}  // namespace amoauth::testing
