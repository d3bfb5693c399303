// floodgate serve: runs floodgate-serve, installed beside the floodgate command.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "commands.h"
#include "flags.h"

namespace floodgate::app {

int run_serve(const std::vector<std::string>& args) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::string program =
      (ec ? std::filesystem::path("floodgate-serve") : self.parent_path() / "floodgate-serve")
          .string();
  std::vector<char*> argv;
  std::string name = "floodgate-serve";
  argv.push_back(name.data());
  std::vector<std::string> copy = args;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(program.c_str(), argv.data());
  return usage_error("serve", "cannot run \"" + program + "\": " + std::strerror(errno) +
                                  " (it is built when gRPC, protobuf and libyaml are installed: "
                                  "scripts/install-deps.sh)");
}

}  // namespace floodgate::app
