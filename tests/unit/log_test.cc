// The logger: Firecracker's line format, PUT /logger at runtime (level, show_level,
// show_log_origin, log_path), and lines a full destination cannot take, counted, never waited on.
#include "vmm/base/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "vmm/base/metrics.h"

namespace ember {
namespace {

struct LogPipe {
  UniqueFd read;
  UniqueFd write;
  static LogPipe Create() {
    int fds[2];
    EXPECT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    return LogPipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
  }
  std::string Drain() const {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(read.get(), buf, sizeof(buf))) > 0;)
      out.append(buf, static_cast<size_t>(n));
    return out;
  }
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `log` on a thread named "tester" (the thread name is part of the line) and waits for
// it, at most 10 s: a logger that blocked fails the test instead of hanging it.
template <typename F>
void LogFromTester(F log) {
  auto done = std::async(std::launch::async, [&] {
    SetThreadLogName("tester");
    log();
  });
  if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "logging blocked";
    std::abort();
  }
}

// Each test logs into its own pipe and puts the logger back as it found it.
class LoggerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LoggerConfig c;
    c.instance_id = "vm-7";
    c.fd = pipe_.write.get();
    ConfigureLogger(c);
  }
  void TearDown() override { ConfigureLogger(saved_); }

  LoggerConfig saved_ = CurrentLoggerConfig();
  LogPipe pipe_ = LogPipe::Create();
};

const char kTimestamp[] = R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9})";

TEST_F(LoggerTest, LinesHaveFirecrackersFormat) {
  LogFromTester([] { LOG_INFO("hello %d", 42); });
  EXPECT_TRUE(std::regex_match(
      pipe_.Drain(), std::regex(std::string(kTimestamp) + R"( \[vm-7:tester\] hello 42\n)")));

  LoggerConfig c = CurrentLoggerConfig();
  c.show_level = true;
  c.show_origin = true;
  ConfigureLogger(c);
  LogFromTester([] { LOG_WARN("careful"); });
  std::string line = pipe_.Drain();
  EXPECT_TRUE(std::regex_match(
      line,
      std::regex(std::string(kTimestamp) + R"( \[vm-7:tester:WARN:log_test\.cc:\d+\] careful\n)")))
      << line;
}

TEST_F(LoggerTest, LevelNamesAreRusts) {
  LoggerConfig c = CurrentLoggerConfig();
  c.show_level = true;
  c.level = LogLevel::kTrace;
  ConfigureLogger(c);
  LogFromTester([] {
    LOG_ERROR("e");
    LOG_WARN("w");
    LOG_INFO("i");
    LOG_DEBUG("d");
    LOG_TRACE("t");
  });
  std::string lines = pipe_.Drain();
  for (const char* tag : {":ERROR] e\n", ":WARN] w\n", ":INFO] i\n", ":DEBUG] d\n", ":TRACE] t\n"})
    EXPECT_NE(lines.find(tag), std::string::npos) << tag << " in " << lines;
}

TEST_F(LoggerTest, UpdateFiltersByLevel) {
  LoggerUpdate update;
  update.level = LogLevel::kWarning;
  ASSERT_TRUE(UpdateLogger(update).ok());
  LogFromTester([] {
    LOG_INFO("quiet");
    LOG_WARN("loud");
    LOG_ERROR("louder");
  });
  std::string lines = pipe_.Drain();
  EXPECT_EQ(lines.find("quiet"), std::string::npos) << lines;
  EXPECT_NE(lines.find("] loud\n"), std::string::npos) << lines;
  EXPECT_NE(lines.find("] louder\n"), std::string::npos) << lines;

  // Firecracker's Logger::update: a body without a level puts it back to Info.
  ASSERT_TRUE(UpdateLogger(LoggerUpdate{}).ok());
  LogFromTester([] {
    LOG_INFO("info again");
    LOG_DEBUG("no debug");
  });
  lines = pipe_.Drain();
  EXPECT_NE(lines.find("info again"), std::string::npos) << lines;
  EXPECT_EQ(lines.find("no debug"), std::string::npos) << lines;

  update.level = LogLevel::kOff;
  ASSERT_TRUE(UpdateLogger(update).ok());
  LogFromTester([] { LOG_ERROR("nothing at all"); });
  EXPECT_EQ(pipe_.Drain(), "");
}

TEST_F(LoggerTest, UpdateTogglesLevelAndOriginIndependently) {
  LoggerUpdate update;
  update.show_level = true;
  ASSERT_TRUE(UpdateLogger(update).ok());
  LogFromTester([] { LOG_INFO("a"); });
  EXPECT_NE(pipe_.Drain().find("[vm-7:tester:INFO] a\n"), std::string::npos);

  update = LoggerUpdate{};
  update.show_log_origin = true;  // show_level absent: stays on
  ASSERT_TRUE(UpdateLogger(update).ok());
  LogFromTester([] { LOG_INFO("b"); });
  std::string line = pipe_.Drain();
  EXPECT_TRUE(std::regex_search(line, std::regex(R"(\[vm-7:tester:INFO:log_test\.cc:\d+\] b\n)")))
      << line;

  update = LoggerUpdate{};
  update.show_level = false;
  ASSERT_TRUE(UpdateLogger(update).ok());
  LogFromTester([] { LOG_INFO("c"); });
  line = pipe_.Drain();
  EXPECT_TRUE(std::regex_search(line, std::regex(R"(\[vm-7:tester:log_test\.cc:\d+\] c\n)")))
      << line;
}

class LoggerPathTest : public LoggerTest {
 protected:
  void SetUp() override {
    LoggerTest::SetUp();
    char tmpl[] = "/tmp/ember-log-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    LoggerTest::TearDown();
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
};

TEST_F(LoggerPathTest, UpdateOpensLogPathForAppending) {
  const std::string path = dir_ + "/ember.log";
  std::ofstream(path) << "earlier\n";
  LoggerUpdate update;
  update.log_path = path;
  ASSERT_TRUE(UpdateLogger(update).ok());
  LogFromTester([] { LOG_INFO("to the file"); });
  EXPECT_EQ(pipe_.Drain(), "");
  std::string contents = ReadAll(path);
  EXPECT_EQ(contents.substr(0, 8), "earlier\n");
  EXPECT_TRUE(std::regex_match(contents.substr(8), std::regex(std::string(kTimestamp) +
                                                              R"( \[vm-7:tester\] to the file\n)")))
      << contents;

  // A file that does not exist yet is created.
  update.log_path = dir_ + "/new.log";
  ASSERT_TRUE(UpdateLogger(update).ok());
  LogFromTester([] { LOG_INFO("fresh"); });
  EXPECT_NE(ReadAll(dir_ + "/new.log").find("] fresh\n"), std::string::npos);
}

TEST_F(LoggerPathTest, AFifoWithoutAReaderYetCanBeTheLogPath) {
  const std::string fifo = dir_ + "/log.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  LoggerUpdate update;
  update.log_path = fifo;
  Status s = UpdateLogger(update);
  ASSERT_TRUE(s.ok()) << s.error().message;  // a write-only non-blocking open would be ENXIO
  UniqueFd reader(open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(reader.valid());
  LogFromTester([] { LOG_INFO("through the fifo"); });
  char buf[512];
  ssize_t n = read(reader.get(), buf, sizeof(buf));
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string(buf, static_cast<size_t>(n)).find("] through the fifo\n"),
            std::string::npos);
}

TEST_F(LoggerPathTest, AnUpdateThatCannotOpenItsPathChangesNothing) {
  LoggerUpdate update;
  update.log_path = dir_ + "/no/such/dir/ember.log";
  update.level = LogLevel::kDebug;
  update.show_level = true;
  Status s = UpdateLogger(update);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("Failed to open target file " + *update.log_path),
            std::string::npos)
      << s.error().message;
  EXPECT_NE(s.error().message.find("ENOENT"), std::string::npos) << s.error().message;
  LogFromTester([] {
    LOG_DEBUG("still filtered");
    LOG_INFO("still here");
  });
  std::string lines = pipe_.Drain();
  EXPECT_EQ(lines.find("still filtered"), std::string::npos) << lines;
  EXPECT_NE(lines.find("[vm-7:tester] still here\n"), std::string::npos) << lines;
}

TEST_F(LoggerTest, AFullPipeCountsTheLostLineAndNeverBlocks) {
  std::string filler(4096, 'x');
  while (write(pipe_.write.get(), filler.data(), filler.size()) > 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
  const uint64_t missed = metrics().logger.missed_log_count.count();
  const uint64_t fails = metrics().logger.log_fails.count();
  LogFromTester([] { LOG_INFO("lost"); });
  EXPECT_EQ(metrics().logger.missed_log_count.count(), missed + 1);
  EXPECT_EQ(metrics().logger.log_fails.count(), fails);  // full is not broken

  std::string drained = pipe_.Drain();
  EXPECT_EQ(drained.find("lost"), std::string::npos);
  LogFromTester([] { LOG_INFO("delivered"); });
  EXPECT_NE(pipe_.Drain().find("] delivered\n"), std::string::npos);
  EXPECT_EQ(metrics().logger.missed_log_count.count(), missed + 1);
}

TEST_F(LoggerTest, ABrokenDestinationCountsAsAFailure) {
  LoggerConfig c = CurrentLoggerConfig();
  c.fd = -1;
  ConfigureLogger(c);
  const uint64_t missed = metrics().logger.missed_log_count.count();
  const uint64_t fails = metrics().logger.log_fails.count();
  LogFromTester([] { LOG_INFO("nowhere"); });
  EXPECT_EQ(metrics().logger.missed_log_count.count(), missed + 1);
  EXPECT_EQ(metrics().logger.log_fails.count(), fails + 1);
}

TEST_F(LoggerTest, LongLinesAreCutToOnePipeBuffer) {
  const std::string big(3 * kMaxLogLineBytes, 'y');
  LogFromTester([&] { LOG_INFO("%s", big.c_str()); });
  std::string line = pipe_.Drain();
  EXPECT_LE(line.size(), kMaxLogLineBytes);
  EXPECT_GT(line.size(), kMaxLogLineBytes - 64);
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_EQ(line.find('\0'), std::string::npos);
}

// PUT /logger while other threads log: every line comes out whole, in one format or the other.
TEST_F(LoggerTest, ReconfiguringWhileOtherThreadsLog) {
  // A blocking reader drains the pipe so that no line is lost to a full pipe.
  int flags = fcntl(pipe_.read.get(), F_GETFL);
  ASSERT_EQ(fcntl(pipe_.read.get(), F_SETFL, flags & ~O_NONBLOCK), 0);
  UniqueFd write_end(dup(pipe_.write.get()));
  ASSERT_EQ(fcntl(write_end.get(), F_SETFL, fcntl(write_end.get(), F_GETFL) & ~O_NONBLOCK), 0);
  LoggerConfig c = CurrentLoggerConfig();
  c.fd = write_end.get();
  ConfigureLogger(c);
  pipe_.write.reset();
  std::string received;
  std::thread reader([&] {
    char buf[65536];
    for (ssize_t n; (n = read(pipe_.read.get(), buf, sizeof(buf))) > 0;)
      received.append(buf, static_cast<size_t>(n));
  });

  constexpr int kThreads = 4, kLines = 2000;
  const uint64_t missed = metrics().logger.missed_log_count.count();
  std::vector<std::thread> loggers;
  for (int t = 0; t < kThreads; t++) {
    loggers.emplace_back([t] {
      SetThreadLogName("busy");
      for (int i = 0; i < kLines; i++) LOG_INFO("thread %d line %d", t, i);
    });
  }
  for (int i = 0; i < 200; i++) {
    LoggerUpdate update;
    update.show_level = (i % 2) == 0;
    ASSERT_TRUE(UpdateLogger(update).ok());
  }
  for (auto& t : loggers) t.join();
  ConfigureLogger(saved_);
  write_end.reset();  // the reader sees the end
  reader.join();

  const std::regex line_re(std::string(kTimestamp) +
                           R"( \[vm-7:busy(:INFO)?\] thread \d line \d+)");
  std::istringstream in(received);
  int lines = 0;
  for (std::string line; std::getline(in, line); lines++)
    ASSERT_TRUE(std::regex_match(line, line_re)) << line;
  EXPECT_EQ(lines, kThreads * kLines);
  EXPECT_EQ(metrics().logger.missed_log_count.count(), missed);
}

TEST(LogTest, WarnIsAcceptedAsFirecrackerDoes) {
  EXPECT_EQ(ParseLogLevel("warn"), LogLevel::kWarning);
  EXPECT_EQ(ParseLogLevel("WARN"), LogLevel::kWarning);
  EXPECT_EQ(ParseLogLevel("warning"), LogLevel::kWarning);
  EXPECT_FALSE(ParseLogLevel("warnings").has_value());
}

}  // namespace
}  // namespace ember
