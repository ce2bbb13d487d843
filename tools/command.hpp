// Subcommands of the `moevk` tool register themselves here (one file per subcommand).
// The tool uses only the public C API (include/moevk.h).
#pragma once
#include <string>
#include <vector>

namespace moevk_cli {

using CommandFn = int (*)(int argc, char** argv);  // argv[0] is the subcommand name

struct Command {
  const char* name;
  const char* summary;
  CommandFn run;
};

std::vector<Command>& commands();

struct RegisterCommand {
  RegisterCommand(const char* name, const char* summary, CommandFn run) {
    commands().push_back({name, summary, run});
  }
};

}  // namespace moevk_cli
