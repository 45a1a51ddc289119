#include <Eigen/Dense>

#include "metrics/frechet.h"
#include "test_util.h"

using namespace sit::metrics;

namespace {

Eigen::MatrixXd random_spd(int64_t d, uint64_t seed, double ridge = 0.1) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd a(d, d + 3);
  for (int64_t i = 0; i < a.size(); ++i)
    a.data()[i] = normal(rng);
  Eigen::MatrixXd s =
      a * a.transpose() / static_cast<double>(d) + ridge * Eigen::MatrixXd::Identity(d, d);
  return s;
}

Eigen::VectorXd random_vec(int64_t d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Eigen::VectorXd v(d);
  for (int64_t i = 0; i < d; ++i)
    v[i] = normal(rng);
  return v;
}

FeatureStats make(const Eigen::VectorXd& mu, const Eigen::MatrixXd& sigma, int64_t count = 0) {
  FeatureStats s;
  s.mu = mu;
  s.sigma = sigma;
  s.count = count;
  return s;
}

Eigen::MatrixXd random_rotation(int64_t d, uint64_t seed) {
  Eigen::MatrixXd a = random_spd(d, seed) + Eigen::MatrixXd::Random(d, d);
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(a);
  return qr.householderQ();
}

}  // namespace

TEST(Frechet, ZeroForIdenticalStatistics) {
  const auto s = make(random_vec(40, 1), random_spd(40, 2));
  for (auto route : {FrechetRoute::kEigen, FrechetRoute::kSqrtm}) {
    FrechetOptions o;
    o.route = route;
    const auto r = frechet_distance(s, s, o);
    EXPECT_NEAR(r.distance, 0.0, 1e-10 * r.trace_1) << to_string(route);
  }
}

TEST(Frechet, DiagonalCovariancesHaveClosedForm) {
  const int64_t d = 30;
  Eigen::VectorXd a(d), b(d);
  for (int64_t i = 0; i < d; ++i) {
    a[i] = 0.5 + i * 0.1;
    b[i] = 2.0 / (1 + i);
  }
  const auto mu1 = random_vec(d, 3), mu2 = random_vec(d, 4);
  double expected = (mu1 - mu2).squaredNorm();
  for (int64_t i = 0; i < d; ++i)
    expected += std::pow(std::sqrt(a[i]) - std::sqrt(b[i]), 2);
  for (auto route : {FrechetRoute::kEigen, FrechetRoute::kSqrtm}) {
    FrechetOptions o;
    o.route = route;
    const auto r = frechet_distance(make(mu1, a.asDiagonal().toDenseMatrix()),
                                    make(mu2, b.asDiagonal().toDenseMatrix()), o);
    EXPECT_NEAR(r.distance, expected, 1e-12 * expected) << to_string(route);
  }
}

TEST(Frechet, InvariantUnderSharedRotation) {
  const int64_t d = 50;
  const auto s1 = make(random_vec(d, 5), random_spd(d, 6));
  const auto s2 = make(random_vec(d, 7), random_spd(d, 8));
  const Eigen::MatrixXd q = random_rotation(d, 9);
  const auto r1 = make(q * s1.mu, q * s1.sigma * q.transpose());
  const auto r2 = make(q * s2.mu, q * s2.sigma * q.transpose());
  const double a = frechet_distance(s1, s2).distance;
  const double b = frechet_distance(r1, r2).distance;
  EXPECT_NEAR(a, b, 1e-10 * a);
}

TEST(Frechet, EigenRouteAgreesWithSqrtmRoute) {
  for (int64_t d : {2, 17, 128}) {
    const auto s1 = make(random_vec(d, 10 + d), random_spd(d, 11 + d, 0.01));
    const auto s2 = make(random_vec(d, 12 + d), random_spd(d, 13 + d, 0.01));
    FrechetOptions eig, sq;
    sq.route = FrechetRoute::kSqrtm;
    const auto a = frechet_distance(s1, s2, eig), b = frechet_distance(s1, s2, sq);
    EXPECT_NEAR(a.trace_sqrt, b.trace_sqrt, 1e-10 * b.trace_sqrt) << "d = " << d;
    EXPECT_NEAR(a.distance, b.distance, 1e-9 * b.distance) << "d = " << d;
  }
}

TEST(Frechet, RankDeficientSideStillAgreesAndWarns) {
  // Sample covariance of rank 10 in 40 dimensions (N = 11 <= D).
  const int64_t d = 40;
  Eigen::MatrixXd a = Eigen::MatrixXd::Random(d, 10);
  const Eigen::MatrixXd low_rank = a * a.transpose();
  const auto s1 = make(random_vec(d, 20), low_rank, 11);
  const auto s2 = make(random_vec(d, 21), random_spd(d, 22), 5000);
  FrechetOptions sq;
  sq.route = FrechetRoute::kSqrtm;
  const auto e = frechet_distance(s1, s2);
  const auto q = frechet_distance(s1, s2, sq);
  EXPECT_NEAR(e.trace_sqrt, q.trace_sqrt, 1e-8 * q.trace_sqrt);
  ASSERT_EQ(e.warnings.size(), 1u);
  EXPECT_NE(e.warnings[0].find("rank-deficient"), std::string::npos);
  EXPECT_NE(e.warnings[0].find("N = 11 <= D = 40"), std::string::npos);
}

TEST(Frechet, BothSidesSingularUsesEigenFactor) {
  const int64_t d = 12;
  Eigen::MatrixXd a = Eigen::MatrixXd::Random(d, 4), b = Eigen::MatrixXd::Random(d, 5);
  const auto s1 = make(Eigen::VectorXd::Zero(d), a * a.transpose());
  const auto s2 = make(Eigen::VectorXd::Zero(d), b * b.transpose());
  FrechetOptions sq;
  sq.route = FrechetRoute::kSqrtm;
  const double expected = frechet_distance(s1, s2, sq).trace_sqrt;
  EXPECT_NEAR(trace_sqrt_product_eigen(s1.sigma, s2.sigma), expected, 1e-7 * expected);
}

TEST(Frechet, FactoredReferenceGivesTheSameDistances) {
  const int64_t d = 30;
  Eigen::MatrixXd a = Eigen::MatrixXd::Random(d, 8), b = Eigen::MatrixXd::Random(d, 6);
  const auto full = make(random_vec(d, 30), random_spd(d, 31));
  const auto singular = make(random_vec(d, 32), b * b.transpose());  // eigen-factor route
  const std::vector<FeatureStats> samples = {make(random_vec(d, 33), random_spd(d, 34)),
                                             make(random_vec(d, 35), a * a.transpose())};
  for (const FeatureStats* ref : {&full, &singular}) {
    const FrechetReference factored(*ref);
    for (const auto& s : samples) {
      // With a singular side the routes differ by rounding that the square roots of
      // near-zero eigenvalues amplify.
      const double want = frechet_distance(s, *ref).distance;
      const double tol = ref == &full && &s == &samples[0] ? 1e-12 : 1e-6;
      EXPECT_NEAR(factored.distance(s), want, tol * std::abs(want));
    }
  }
  // Bad samples get frechet_distance's errors.
  const FrechetReference factored(full);
  auto bad = samples[0];
  bad.sigma(0, 0) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(factored.distance(bad), sit::Error);
  EXPECT_THROW(factored.distance(make(random_vec(d + 1, 1), random_spd(d + 1, 2))), sit::Error);
}

TEST(Frechet, SqrtmRouteRejectsLargeImaginaryComponent) {
  // Not a covariance (negative eigenvalue): sqrtm of the product is complex.
  Eigen::MatrixXd bad = Eigen::MatrixXd::Identity(3, 3);
  bad(1, 1) = -1.0;
  FrechetOptions sq;
  sq.route = FrechetRoute::kSqrtm;
  sit::test::expect_error(
      [&] {
        frechet_distance(make(Eigen::VectorXd::Zero(3), bad),
                         make(Eigen::VectorXd::Zero(3), Eigen::MatrixXd::Identity(3, 3)), sq);
      },
      {"imaginary component", "<= 0.001"});
}

TEST(Frechet, BadShapesAndValuesAreErrors) {
  const auto s3 = make(Eigen::VectorXd::Zero(3), Eigen::MatrixXd::Identity(3, 3));
  const auto s4 = make(Eigen::VectorXd::Zero(4), Eigen::MatrixXd::Identity(4, 4));
  sit::test::expect_error([&] { frechet_distance(s3, s4); },
                          {"dimensions must match", "3 (samples)", "4 (reference)"});
  auto wrong = s3;
  wrong.sigma = Eigen::MatrixXd::Identity(2, 2);
  sit::test::expect_error([&] { frechet_distance(wrong, s3); },
                          {"sample covariance must be (3, 3)", "got (2, 2)"});
  auto nan = s3;
  nan.sigma(0, 1) = std::numeric_limits<double>::quiet_NaN();
  sit::test::expect_error([&] { frechet_distance(s3, nan); },
                          {"reference statistics must be finite"});
  sit::test::expect_error([] { parse_frechet_route("svd"); }, {"eigen, sqrtm", "'svd'"});
}
