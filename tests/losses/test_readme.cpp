// The README's triplet example must be exactly tests/losses/readme_snippet.cpp, which the test
// 'losses_readme_snippet' compiles and runs: then the README cannot drift from working code.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

static std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in.good()) << "cannot open " << path;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

TEST(Readme, TripletSnippetIsTheTestedProgram) {
    const std::string root = SEMIGRAD_SOURCE_ROOT;
    const std::string readme = read_file(root + "/README.md");
    const std::string snippet = read_file(root + "/tests/losses/readme_snippet.cpp");
    const std::string begin = "<!-- snippet:triplet begin -->\n```cpp\n", end = "```\n<!-- snippet:triplet end -->";
    const std::size_t b = readme.find(begin);
    ASSERT_NE(b, std::string::npos) << "README.md lacks the marker " << begin;
    const std::size_t e = readme.find(end, b);
    ASSERT_NE(e, std::string::npos) << "README.md lacks the marker " << end;
    EXPECT_EQ(readme.substr(b + begin.size(), e - b - begin.size()), snippet)
        << "README.md's triplet example differs from tests/losses/readme_snippet.cpp";
}
