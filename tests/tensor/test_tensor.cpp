#include <gtest/gtest.h>

#include "tensor/error.hpp"
#include "tensor/tensor.hpp"

using namespace semigrad;

TEST(Tensor, ShapeFillAndIndexing) {
    Tensor t({2, 3, 4}, 1.5f);
    EXPECT_EQ(t.ndim(), 3u);
    EXPECT_EQ(t.size(), 24u);
    EXPECT_EQ(t.dim(-1), 4u);
    EXPECT_EQ(to_string(t.shape()), "[2,3,4]");
    t.at({1, 2, 3}) = 7.0f;
    EXPECT_EQ(t[23], 7.0f);  // row-major: last element
    EXPECT_EQ(t.at({0, 0, 0}), 1.5f);
}

TEST(Tensor, FromValuesIsRowMajor) {
    Tensor t({2, 3}, {0, 1, 2, 3, 4, 5});
    EXPECT_EQ(t.at({1, 0}), 3.0f);
    EXPECT_EQ(t.at({0, 2}), 2.0f);
}

TEST(Tensor, ReshapeKeepsOrderAndCopies) {
    Tensor t({2, 3}, {0, 1, 2, 3, 4, 5});
    Tensor r = t.reshape({3, 2});
    EXPECT_EQ(r.at({2, 1}), 5.0f);
    r[0] = 99.0f;
    EXPECT_EQ(t[0], 0.0f);
}

TEST(Tensor, ErrorsNameShapes) {
    Tensor t({2, 3});
    try {
        (void)t.reshape({4, 2});
        FAIL() << "reshape to a different size must throw";
    } catch (const ShapeError& e) {
        EXPECT_NE(std::string(e.what()).find("[2,3]"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("[4,2]"), std::string::npos) << e.what();
    }
    EXPECT_THROW(Tensor({2, 2}, std::vector<float>{1, 2, 3}), ShapeError);
    EXPECT_THROW((void)t.at({2, 0}), ShapeError);
    EXPECT_THROW((void)t.at({0}), ShapeError);
    EXPECT_THROW((void)t.item(), ShapeError);
    EXPECT_THROW((void)t.dim(2), ShapeError);
    EXPECT_THROW(check_same_shape("add", t, Tensor({3, 2})), ShapeError);
}

TEST(Tensor, MaxAbsDiffSeesNaN) {
    Tensor a({3}, {1, 2, 3}), b({3}, {1, 2.5f, 3});
    EXPECT_FLOAT_EQ(max_abs_diff(a, b), 0.5f);
    b[0] = std::nanf("");
    EXPECT_TRUE(std::isnan(max_abs_diff(a, b)));
}
