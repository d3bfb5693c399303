// Runs a fuzz target over files, without libFuzzer: how the committed corpora and every input
// that once crashed a target run as ordinary tests, with any compiler. Usage: PROGRAM PATH...,
// each a file or a folder of files; a folder that does not exist is skipped (git keeps no empty
// folder, and a target may have no regression yet). Exits 0 if at least one input ran and every
// one did; a finding aborts.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

int run_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return 1;
  }
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  const std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(data.data(), data.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int inputs = 0;
  int errors = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path path(argv[i]);
    if (!std::filesystem::exists(path)) continue;
    if (std::filesystem::is_directory(path)) {
      for (const auto& entry : std::filesystem::directory_iterator(path)) {
        if (!entry.is_regular_file()) continue;
        errors += run_file(entry.path());
        ++inputs;
      }
    } else {
      errors += run_file(path);
      ++inputs;
    }
  }
  std::printf("ran %d inputs\n", inputs);
  return errors == 0 && inputs > 0 ? 0 : 1;
}
