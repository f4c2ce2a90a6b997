#include "services/common/child_process.h"

#include <signal.h>
#include <sys/wait.h>

#include "gtest/gtest.h"

namespace glm4v {
namespace {

TEST(ChildProcessTest, ReportsExitCode) {
  auto child = ChildProcess::Start({"/bin/sh", "-c", "exit 3"});
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE((*child)->WaitFor(absl::Seconds(10)));
  EXPECT_FALSE((*child)->succeeded());
  EXPECT_EQ((*child)->DescribeExit(), "exit code 3");
}

TEST(ChildProcessTest, StopSendsSigtermFirst) {
  // The shell exits 0 from its TERM trap, which proves SIGTERM (not SIGKILL) arrived.
  auto child =
      ChildProcess::Start({"/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done"});
  ASSERT_TRUE(child.ok()) << child.status();
  absl::SleepFor(absl::Milliseconds(200));  // let the shell install its trap
  (*child)->Stop(absl::Seconds(10));
  EXPECT_TRUE((*child)->succeeded()) << (*child)->DescribeExit();
}

TEST(ChildProcessTest, DestructorKillsARunningChild) {
  pid_t pid;
  {
    auto child = ChildProcess::Start({"/bin/sleep", "60"});
    ASSERT_TRUE(child.ok()) << child.status();
    pid = (*child)->pid();
    EXPECT_FALSE((*child)->Poll());
  }
  EXPECT_NE(kill(pid, 0), 0);  // reaped: the pid no longer exists
}

TEST(ChildProcessTest, MissingExecutableIsNotFound) {
  auto child = ChildProcess::Start({"/nonexistent/binary"});
  EXPECT_EQ(child.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace glm4v
