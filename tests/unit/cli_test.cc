#include "api/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ember {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

Result<CliOptions> Parse(std::vector<std::string> args) { return ParseCommandLine(args); }

// The error message of a parse that must fail.
std::string ErrorOf(std::vector<std::string> args) {
  auto r = ParseCommandLine(args);
  EXPECT_FALSE(r.ok()) << "expected an error for the arguments";
  if (r.ok()) return "";
  EXPECT_THAT(r.error().message, StartsWith("ember: "));
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "errors are one line";
  return r.error().message;
}

TEST(CliTest, DefaultsMatchFirecrackerWithEmbersSocket) {
  auto r = Parse({});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->api_sock, "/run/ember.socket");
  EXPECT_EQ(r->id, "anonymous-instance");
  EXPECT_EQ(r->http_api_max_payload_size, 51200u);
  EXPECT_TRUE(r->config_file.empty());
  EXPECT_FALSE(r->no_api);
  EXPECT_FALSE(r->boot_timer);
  EXPECT_FALSE(r->level.has_value());
  EXPECT_FALSE(r->mmds_size_limit.has_value());
  EXPECT_FALSE(r->start_time_us.has_value());
  EXPECT_FALSE(r->help);
  EXPECT_FALSE(r->version);
}

TEST(CliTest, ParsesEveryFlagInBothForms) {
  auto r = Parse({"--api-sock",
                  "/tmp/a.sock",
                  "--config-file=vm.json",
                  "--no-api",
                  "--id",
                  "vm-01",
                  "--boot-timer",
                  "--log-path=/tmp/log",
                  "--level",
                  "debug",
                  "--module",
                  "vmm::devices",
                  "--show-level",
                  "--show-log-origin",
                  "--metrics-path",
                  "/tmp/metrics",
                  "--metadata=/tmp/mmds.json",
                  "--http-api-max-payload-size",
                  "1000",
                  "--mmds-size-limit=2000",
                  "--seccomp-filter",
                  "/tmp/bpf",
                  "--start-time-us",
                  "123",
                  "--start-time-cpu-us=45",
                  "--parent-cpu-time-us",
                  "6"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->api_sock, "/tmp/a.sock");
  EXPECT_EQ(r->config_file, "vm.json");
  EXPECT_TRUE(r->no_api);
  EXPECT_EQ(r->id, "vm-01");
  EXPECT_TRUE(r->boot_timer);
  EXPECT_EQ(r->log_path, "/tmp/log");
  EXPECT_EQ(r->level, LogLevel::kDebug);
  EXPECT_EQ(r->module, "vmm::devices");
  EXPECT_TRUE(r->show_level);
  EXPECT_TRUE(r->show_log_origin);
  EXPECT_EQ(r->metrics_path, "/tmp/metrics");
  EXPECT_EQ(r->metadata, "/tmp/mmds.json");
  EXPECT_EQ(r->http_api_max_payload_size, 1000u);
  EXPECT_EQ(r->mmds_size_limit, 2000u);
  EXPECT_EQ(r->seccomp_filter, "/tmp/bpf");
  EXPECT_FALSE(r->no_seccomp);
  EXPECT_EQ(r->start_time_us, 123u);
  EXPECT_EQ(r->start_time_cpu_us, 45u);
  EXPECT_EQ(r->parent_cpu_time_us, 6u);
}

TEST(CliTest, ArgcArgvFormSkipsTheProgramName) {
  char prog[] = "ember", flag[] = "--id", value[] = "abc";
  char* argv[] = {prog, flag, value, nullptr};
  auto r = ParseCommandLine(3, argv);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->id, "abc");
}

TEST(CliTest, EqualsFormKeepsEverythingAfterTheFirstEquals) {
  auto r = Parse({"--config-file=a=b.json", "--log-path=--weird"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->config_file, "a=b.json");
  EXPECT_EQ(r->log_path, "--weird");
}

TEST(CliTest, HelpAndVersion) {
  EXPECT_TRUE(Parse({"--help"})->help);
  EXPECT_TRUE(Parse({"--version"})->version);
  // --help prints and exits, so cross-flag rules do not stand in its way.
  EXPECT_TRUE(Parse({"--no-api", "--help"}).ok());
  EXPECT_STREQ(kEmberVersion, "0.1.0");
}

TEST(CliTest, InstanceId) {
  EXPECT_EQ(Parse({"--id", std::string(64, 'a')})->id, std::string(64, 'a'));
  EXPECT_EQ(Parse({"--id", "A-z-0-9"})->id, "A-z-0-9");
  EXPECT_EQ(ErrorOf({"--id", "a b"}),
            "ember: invalid value for --id: \"a b\" (1-64 characters of A-Z, a-z, 0-9 and '-')");
  EXPECT_THAT(ErrorOf({"--id", std::string(65, 'a')}), HasSubstr("--id"));
  EXPECT_THAT(ErrorOf({"--id="}), HasSubstr("invalid value for --id: \"\""));
  EXPECT_THAT(ErrorOf({"--id", "under_score"}), HasSubstr("--id"));
  EXPECT_THAT(ErrorOf({"--id", "dot.ted"}), HasSubstr("--id"));
}

TEST(CliTest, ControlCharactersInValuesAreEscaped) {
  EXPECT_THAT(ErrorOf({"--id", "a\nb"}), HasSubstr("\"a\\x0ab\""));
}

TEST(CliTest, LogLevel) {
  EXPECT_EQ(Parse({"--level", "Error"})->level, LogLevel::kError);
  EXPECT_EQ(Parse({"--level", "WARNING"})->level, LogLevel::kWarning);
  EXPECT_EQ(Parse({"--level", "info"})->level, LogLevel::kInfo);
  EXPECT_EQ(Parse({"--level", "Trace"})->level, LogLevel::kTrace);
  EXPECT_EQ(Parse({"--level", "off"})->level, LogLevel::kOff);
  EXPECT_THAT(ErrorOf({"--level", "verbose"}), HasSubstr("invalid value for --level: \"verbose\""));
}

TEST(CliTest, NoApiRequiresConfigFile) {
  EXPECT_EQ(ErrorOf({"--no-api"}), "ember: --no-api requires --config-file");
  EXPECT_TRUE(Parse({"--no-api", "--config-file", "x.json"}).ok());
}

TEST(CliTest, SeccompFlagsAreMutuallyExclusive) {
  EXPECT_TRUE(Parse({"--no-seccomp"})->no_seccomp);
  EXPECT_THAT(ErrorOf({"--no-seccomp", "--seccomp-filter", "f.bpf"}),
              AllOf(HasSubstr("--seccomp-filter"), HasSubstr("--no-seccomp")));
}

TEST(CliTest, ApiSockLength) {
  std::string longest = "/" + std::string(106, 's');  // 107 bytes + NUL fills sun_path
  EXPECT_EQ(Parse({"--api-sock", longest})->api_sock, longest);
  EXPECT_THAT(ErrorOf({"--api-sock", longest + "s"}), HasSubstr("invalid value for --api-sock"));
  EXPECT_THAT(ErrorOf({"--api-sock="}), HasSubstr("invalid value for --api-sock: \"\""));
}

TEST(CliTest, NumericFlagsMustBeNumbers) {
  for (const char* flag : {"--start-time-us", "--start-time-cpu-us", "--parent-cpu-time-us",
                           "--http-api-max-payload-size", "--mmds-size-limit"}) {
    for (const char* bad : {"abc", "-1", "12x", "", "99999999999999999999999"}) {
      std::string msg = ErrorOf({std::string(flag) + "=" + bad});
      EXPECT_THAT(msg, HasSubstr(std::string("invalid value for ") + flag)) << bad;
    }
  }
  EXPECT_THAT(ErrorOf({"--http-api-max-payload-size", "0"}),
              HasSubstr("--http-api-max-payload-size"));
  EXPECT_EQ(Parse({"--mmds-size-limit", "0"})->mmds_size_limit, 0u);
}

TEST(CliTest, PathFlagsRejectEmptyValues) {
  for (const char* flag : {"--config-file", "--log-path", "--metrics-path", "--metadata",
                           "--seccomp-filter", "--module"}) {
    EXPECT_THAT(ErrorOf({std::string(flag) + "="}),
                HasSubstr(std::string("invalid value for ") + flag));
  }
}

TEST(CliTest, FlagGivenTwice) {
  EXPECT_EQ(ErrorOf({"--id", "a", "--id=b"}), "ember: --id given more than once");
  EXPECT_EQ(ErrorOf({"--boot-timer", "--boot-timer"}), "ember: --boot-timer given more than once");
}

TEST(CliTest, MissingValues) {
  EXPECT_EQ(ErrorOf({"--config-file"}), "ember: missing value for --config-file FILE");
  // A following flag is not swallowed as the value.
  EXPECT_EQ(ErrorOf({"--api-sock", "--no-api"}), "ember: missing value for --api-sock PATH");
}

TEST(CliTest, SwitchesTakeNoValue) {
  EXPECT_EQ(ErrorOf({"--no-api=true"}), "ember: --no-api takes no value");
}

TEST(CliTest, UnknownFlagsAndPositionalArguments) {
  EXPECT_EQ(ErrorOf({"--frobnicate"}), "ember: unknown flag \"--frobnicate\" (see --help)");
  EXPECT_EQ(ErrorOf({"--frobnicate=1"}), "ember: unknown flag \"--frobnicate\" (see --help)");
  EXPECT_THAT(ErrorOf({"vm.json"}), HasSubstr("unexpected argument \"vm.json\""));
  EXPECT_THAT(ErrorOf({"-h"}), HasSubstr("unexpected argument \"-h\""));
  EXPECT_THAT(ErrorOf({"--"}), HasSubstr("unexpected argument \"--\""));
  EXPECT_THAT(ErrorOf({"--id", "a", "extra"}), HasSubstr("unexpected argument \"extra\""));
}

TEST(CliTest, UnsupportedFirecrackerFlags) {
  EXPECT_THAT(ErrorOf({"--snapshot-version"}), HasSubstr("--snapshot-version is not supported"));
  EXPECT_THAT(ErrorOf({"--describe-snapshot", "snap"}),
              HasSubstr("--describe-snapshot is not supported"));
  EXPECT_THAT(ErrorOf({"--enable-pci"}), HasSubstr("--enable-pci is not supported"));
}

TEST(CliTest, UsageListsEveryFlag) {
  std::string usage = UsageText();
  for (const char* flag : {"--api-sock PATH",
                           "--config-file FILE",
                           "--no-api",
                           "--id ID",
                           "--boot-timer",
                           "--log-path PATH",
                           "--level LEVEL",
                           "--module NAME",
                           "--show-level",
                           "--show-log-origin",
                           "--metrics-path PATH",
                           "--metadata FILE",
                           "--http-api-max-payload-size BYTES",
                           "--mmds-size-limit BYTES",
                           "--seccomp-filter FILE",
                           "--no-seccomp",
                           "--start-time-us US",
                           "--start-time-cpu-us US",
                           "--parent-cpu-time-us US",
                           "--version",
                           "--help",
                           "--snapshot-version",
                           "--describe-snapshot FILE",
                           "--enable-pci"}) {
    EXPECT_THAT(usage, HasSubstr(flag));
  }
  EXPECT_THAT(usage, HasSubstr("0.1.0"));
}

}  // namespace
}  // namespace ember
