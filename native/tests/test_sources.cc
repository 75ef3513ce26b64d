// The two builds (binding.gyp for node-gyp, CMakeLists.txt for cmake / cmake-js)
// compile the same sources: both read native/sources.txt, every listed file
// exists, and every .cc under native/kernels and native/runtime is listed.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "test_util.h"

namespace fs = std::filesystem;
using namespace mnq_test;

namespace {
std::string read(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("MNQ_SOURCE_DIR");
  const fs::path native = argc > 1 ? fs::path(argv[1]) : env ? fs::path(env) : fs::path("native");
  const fs::path root = native.parent_path();
  CHECK_MSG(fs::exists(native / "sources.txt"), "%s/sources.txt missing", native.c_str());

  std::set<std::string> listed;
  std::istringstream lines(read(native / "sources.txt"));
  for (std::string line; std::getline(lines, line);) {
    line.erase(0, line.find_first_not_of(" \t\r"));
    line.erase(line.find_last_not_of(" \t\r") + 1);
    if (line.empty() || line[0] == '#') continue;
    CHECK_MSG(listed.insert(line).second, "%s listed twice in sources.txt", line.c_str());
    CHECK_MSG(fs::exists(native / line), "sources.txt lists %s, which does not exist", line.c_str());
  }
  CHECK_MSG(!listed.empty(), "sources.txt lists nothing");

  for (const char* dir : {"kernels", "runtime"}) {
    if (!fs::exists(native / dir)) continue;
    for (const auto& e : fs::recursive_directory_iterator(native / dir)) {
      if (!e.is_regular_file() || e.path().extension() != ".cc") continue;
      const std::string rel = fs::relative(e.path(), native).generic_string();
      CHECK_MSG(listed.count(rel) == 1, "native/%s is not listed in native/sources.txt", rel.c_str());
    }
  }

  // binding.gyp must take its sources from sources.txt (plus native/addon/*.cc),
  // not from a list of its own.
  const std::string gyp = read(root / "binding.gyp");
  CHECK_MSG(gyp.find("native/sources.txt") != std::string::npos,
            "binding.gyp does not read native/sources.txt");
  for (const auto& f : listed)
    CHECK_MSG(gyp.find(f) == std::string::npos,
              "binding.gyp names %s directly: list sources only in native/sources.txt", f.c_str());
  const std::string cm = read(native / "CMakeLists.txt");
  CHECK_MSG(cm.find("sources.txt") != std::string::npos, "CMakeLists.txt does not read sources.txt");
  return finish("test_sources");
}
