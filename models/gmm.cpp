#include "models/gmm.h"

#include <ATen/ATen.h>

#include <toml++/toml.h>
#include <cmath>
#include <random>
#include <set>

#include "common/error.h"
#include "common/toml_where.h"
#include "samplers/discrete.h"
#include "samplers/sampler.h"

namespace sit::models {
namespace {

constexpr double kLog2Pi = 1.8378770664093453;
constexpr uint64_t kStreamComponent = 1000, kStreamTarget = 1001;

at::TensorOptions f64() {
  return at::TensorOptions().dtype(at::kDouble);
}

/// Mixture weights (K) restricted to `label` (-1 or the null class: all components).
std::vector<double> weights_for(const std::vector<MixtureComponent>& comps, int64_t label,
                                int64_t num_classes) {
  std::vector<double> w;
  double total = 0;
  for (const auto& c : comps) {
    const bool keep = label < 0 || label >= num_classes || num_classes == 0 || c.label == label;
    w.push_back(keep ? c.weight : 0.0);
    total += w.back();
  }
  if (total <= 0) fail("gmm: class ", label, " has no components");
  for (auto& v : w)
    v /= total;
  return w;
}

}  // namespace

GaussianMixture::GaussianMixture(std::string name, std::vector<MixtureComponent> components,
                                 int64_t num_classes)
    : name_(std::move(name)), components_(std::move(components)), num_classes_(num_classes) {
  if (components_.empty()) fail("gmm ", name_, ": needs at least one component");
  if (num_classes_ < 0) fail("gmm ", name_, ": num_classes must be >= 0, got ", num_classes_);
  dim_ = static_cast<int64_t>(components_[0].mean.size());
  if (dim_ < 1) fail("gmm ", name_, ": component 0 has an empty mean");
  const int64_t k = static_cast<int64_t>(components_.size());
  mu_ = at::empty({k, dim_}, f64());
  var_ = at::empty({k, dim_}, f64());
  log_w_ = at::empty({k}, f64());
  labels_ = at::empty({k}, at::kLong);
  double total = 0;
  for (const auto& c : components_)
    total += c.weight;
  for (int64_t i = 0; i < k; ++i) {
    const auto& c = components_[i];
    if (static_cast<int64_t>(c.mean.size()) != dim_ || static_cast<int64_t>(c.std.size()) != dim_)
      fail("gmm ", name_, ": component ", i, " must have mean and std of length ", dim_, ", got ",
           c.mean.size(), " and ", c.std.size());
    if (!(c.weight > 0) || !std::isfinite(c.weight))
      fail("gmm ", name_, ": component ", i, " weight must be positive, got ", c.weight);
    if (num_classes_ > 0 && (c.label < 0 || c.label >= num_classes_))
      fail("gmm ", name_, ": component ", i, " class must be in [0, ", num_classes_, "), got ",
           c.label);
    for (int64_t d = 0; d < dim_; ++d) {
      if (!(c.std[d] >= 0) || !std::isfinite(c.std[d]) || !std::isfinite(c.mean[d]))
        fail("gmm ", name_, ": component ", i, " needs finite mean and std >= 0");
      mu_[i][d] = c.mean[d];
      var_[i][d] = c.std[d] * c.std[d];
    }
    log_w_[i] = std::log(c.weight / total);
    labels_[i] = c.label;
  }
  if (num_classes_ > 0)
    for (int64_t label = 0; label < num_classes_; ++label)
      weights_for(components_, label, num_classes_);
}

at::Tensor GaussianMixture::predict(samplers::Prediction prediction,
                                    const samplers::Interpolant& path, const at::Tensor& x,
                                    const at::Tensor& t, const at::Tensor& y) const {
  if (x.dim() != 2 || x.size(1) != dim_)
    fail("gmm ", name_, ": x must have shape (B, ", dim_, "), got ", x.sizes());
  const int64_t b = x.size(0);
  const at::Tensor td = t.to(at::kDouble).cpu();
  // Coefficients per row (samplers pass one t for the whole batch: computed once).
  std::vector<double> a(b), da(b), s(b), ds(b);
  const at::Tensor tc = td.contiguous();
  const double* tp = tc.data_ptr<double>();
  samplers::Coefficients coef = path.at(tp[0]);
  for (int64_t i = 0; i < b; ++i) {
    if (i > 0 && tp[i] != tp[i - 1]) coef = path.at(tp[i]);
    a[i] = coef.alpha;
    da[i] = coef.d_alpha;
    s[i] = coef.sigma;
    ds[i] = coef.d_sigma;
  }
  return predict_at(prediction, x, a, da, s, ds, y);
}

samplers::ModelFn GaussianMixture::discrete_model_fn() const {
  // alpha = sqrt(abar_k), sigma = sqrt(1 - abar_k) of DiT's base linear schedule
  const std::vector<double> abar =
      samplers::GaussianDiffusion(samplers::linear_beta_schedule(samplers::kDiffusionSteps))
          .alphas_cumprod;
  return [this, abar](const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
    const int64_t b = x.size(0);
    const at::Tensor tc = t.to(at::kDouble).cpu().contiguous();
    const double* tp = tc.data_ptr<double>();
    std::vector<double> a(b), s(b), zero(b, 0.0);
    for (int64_t i = 0; i < b; ++i) {
      const double k = std::nearbyint(tp[i]);
      if (!(k >= 0 && k < static_cast<double>(abar.size())) || k != tp[i])
        fail("gmm ", name_, ": a discrete timestep must be an integer in [0, ", abar.size(),
             "), got ", tp[i]);
      a[i] = std::sqrt(abar[static_cast<size_t>(k)]);
      s[i] = std::sqrt(1.0 - abar[static_cast<size_t>(k)]);
    }
    return predict_at(samplers::Prediction::kNoise, x, a, zero, s, zero, y);
  };
}

at::Tensor GaussianMixture::predict_at(samplers::Prediction prediction, const at::Tensor& x,
                                       const std::vector<double>& a,
                                       const std::vector<double>& da,
                                       const std::vector<double>& s,
                                       const std::vector<double>& ds, const at::Tensor& y) const {
  if (x.dim() != 2 || x.size(1) != dim_)
    fail("gmm ", name_, ": x must have shape (B, ", dim_, "), got ", x.sizes());
  const int64_t b = x.size(0);
  const at::Tensor xd = x.to(at::kDouble).cpu();
  const at::Tensor yl = y.to(at::kLong).cpu();
  const at::Tensor alpha = at::tensor(a, f64()).view({b, 1, 1});
  const at::Tensor sigma = at::tensor(s, f64()).view({b, 1, 1});
  const at::Tensor d_alpha = at::tensor(da, f64()).view({b, 1});
  const at::Tensor d_sigma = at::tensor(ds, f64()).view({b, 1});
  // log weights restricted to each row's class (-inf elsewhere)
  at::Tensor logw = log_w_.unsqueeze(0).repeat({b, 1});
  if (num_classes_ > 0) {
    const at::Tensor real = (yl >= 0) & (yl < num_classes_);
    const at::Tensor mask = real.unsqueeze(1) & (labels_.unsqueeze(0) != yl.unsqueeze(1));
    logw = logw.masked_fill(mask, -std::numeric_limits<double>::infinity());
  }
  const at::Tensor var = alpha * alpha * var_.unsqueeze(0) + sigma * sigma;  // (B, K, D)
  const at::Tensor diff = xd.unsqueeze(1) - alpha * mu_.unsqueeze(0);
  // At sigma = 0 a Dirac component has var = 0; there x_t = x_1 exactly and E[x0|x] = 0,
  // so those rows are handled separately below.
  const at::Tensor safe_var = at::where(var > 0, var, at::ones_like(var));
  const at::Tensor c = diff / safe_var;
  const at::Tensor log_n = -0.5 * (diff * c + at::log(safe_var) + kLog2Pi).sum(2);
  const at::Tensor r = at::softmax(logw + log_n, 1).unsqueeze(2);  // (B, K, 1)
  const at::Tensor e_x0 = (r * sigma * c).sum(1);                  // E[x_0 | x]
  const at::Tensor e_x1 = (r * (mu_.unsqueeze(0) + alpha * var_.unsqueeze(0) * c)).sum(1);
  const at::Tensor sig = sigma.squeeze(2), alp = alpha.squeeze(2);
  at::Tensor out;
  switch (prediction) {
    case samplers::Prediction::kVelocity: {
      const at::Tensor v = d_alpha * e_x1 + d_sigma * e_x0;
      const at::Tensor v_end = d_alpha / alp * xd;  // sigma = 0: x_1 = x / alpha
      out = at::where(sig == 0, v_end, v);
      break;
    }
    case samplers::Prediction::kNoise:
      out = e_x0;
      break;
    case samplers::Prediction::kScore:
      out = -e_x0 / sig;
      break;
  }
  return out.to(x.options());
}

samplers::ModelFn GaussianMixture::model_fn(samplers::Prediction prediction,
                                            samplers::PathType path) const {
  const samplers::Interpolant interpolant(path);
  return [this, prediction, interpolant](const at::Tensor& x, const at::Tensor& t,
                                         const at::Tensor& y) {
    return predict(prediction, interpolant, x, t, y);
  };
}

at::Tensor GaussianMixture::sample_target(uint64_t seed, const std::vector<int64_t>& ids,
                                          const at::Tensor& y) const {
  const at::Tensor z = samplers::per_sample_normal(seed, ids, kStreamTarget, {dim_}, f64());
  // Component choice per sample id: the first normal of its own stream through the normal
  // CDF gives a uniform, mapped onto the (class-restricted) cumulative weights.
  const at::Tensor u = samplers::per_sample_normal(seed, ids, kStreamComponent, {1}, f64());
  const int64_t n = static_cast<int64_t>(ids.size());
  std::vector<int64_t> chosen(static_cast<size_t>(n));
  const at::Tensor yc = y.to(at::kLong).contiguous();
  const at::Tensor uc = u.contiguous();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = num_classes_ > 0 ? yc.data_ptr<int64_t>()[i] : -1;
    const auto w = weights_for(components_, label, num_classes_);
    const double uniform = 0.5 * std::erfc(-uc.data_ptr<double>()[i] / std::sqrt(2.0));
    double acc = 0;
    size_t k = 0;
    for (; k + 1 < w.size(); ++k) {
      acc += w[k];
      if (uniform < acc) break;
    }
    while (w[k] == 0)
      --k;  // never land on an excluded component
    chosen[i] = static_cast<int64_t>(k);
  }
  const at::Tensor idx = at::tensor(chosen, at::kLong);
  return mu_.index_select(0, idx) + at::sqrt(var_.index_select(0, idx)) * z;
}

at::Tensor GaussianMixture::target_mean(int64_t label) const {
  const auto w = weights_for(components_, label, num_classes_);
  return (at::tensor(w, f64()).unsqueeze(1) * mu_).sum(0);
}

at::Tensor GaussianMixture::target_covariance(int64_t label) const {
  const at::Tensor w = at::tensor(weights_for(components_, label, num_classes_), f64());
  const at::Tensor m = target_mean(label);
  at::Tensor second = at::zeros({dim_, dim_}, f64());
  for (int64_t k = 0; k < mu_.size(0); ++k)
    second += w[k] * (at::diag(var_[k]) + at::outer(mu_[k], mu_[k]));
  return second - at::outer(m, m);
}

GaussianMixture GaussianMixture::preset(const std::string& name) {
  if (name == "bernoulli1d")  // the paper's first 1-D example: atoms at -1 and +1
    return GaussianMixture("bernoulli1d", {{0.5, {-1.0}, {0.0}, -1}, {0.5, {1.0}, {0.0}, -1}});
  if (name == "mix1d")  // the paper's second 1-D example: modes at -1 and 2
    return GaussianMixture("mix1d", {{0.5, {-1.0}, {0.3}, -1}, {0.5, {2.0}, {0.5}, -1}});
  if (name == "demo") {
    // 10 classes x 2 components in 32 dimensions, unequal per-dimension stds; a fixed
    // seed and a portable generator make it identical everywhere.
    constexpr int64_t kDim = 32, kClasses = 10, kPerClass = 2;
    std::mt19937_64 rng(20240116);
    auto uniform = [&rng] { return (static_cast<double>(rng() >> 11) + 0.5) / 9007199254740992.0; };
    auto normal = [&] {
      return std::sqrt(-2 * std::log(uniform())) * std::cos(6.283185307179586 * uniform());
    };
    std::vector<MixtureComponent> comps;
    for (int64_t c = 0; c < kClasses; ++c)
      for (int64_t j = 0; j < kPerClass; ++j) {
        MixtureComponent m;
        m.weight = 1.0 + uniform();
        m.label = c;
        for (int64_t d = 0; d < kDim; ++d) {
          m.mean.push_back(1.5 * normal());
          m.std.push_back(0.2 + 0.6 * uniform());
        }
        comps.push_back(std::move(m));
      }
    return GaussianMixture("demo", std::move(comps), kClasses);
  }
  fail("gmm preset must be one of bernoulli1d, mix1d, demo; got '", name, "'");
}

GaussianMixture GaussianMixture::from_toml(const std::string& path) {
  toml::table tbl;
  try {
    tbl = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    fail(path, ":", e.source().begin.line, ": ", e.description());
  }
  auto where = [&](const toml::node& n) { return toml_where(path, n); };
  for (const auto& [key, node] : tbl)
    if (key != "dim" && key != "num_classes" && key != "component" && key != "name")
      fail(where(node), ": unknown key '", key.str(),
           "' (expected dim, num_classes, name, component)");
  // Sizes are checked before anything is allocated or looped over: a crafted file must
  // not ask for 2^60 values or classes.
  constexpr int64_t kMaxDim = int64_t{1} << 20;
  const auto dim = tbl["dim"].value<int64_t>();
  if (!dim || *dim < 1 || *dim > kMaxDim)
    fail(path, ": key 'dim' must be an integer in [1, ", kMaxDim, "]");
  const int64_t num_classes = tbl["num_classes"].value_or<int64_t>(0);
  const toml::array* comps = tbl["component"].as_array();
  if (!comps || comps->empty()) fail(path, ": needs at least one [[component]] table");
  if (num_classes < 0) fail(path, ": key 'num_classes' must be >= 0, got ", num_classes);
  auto numbers = [&](const toml::node& n, const char* key, int64_t i) {
    std::vector<double> out;
    if (const auto* a = n.as_array()) {
      for (const auto& v : *a) {
        const auto d = v.value<double>();
        if (!d || !std::isfinite(*d))
          fail(where(v), ": component ", i, " '", key, "' must hold finite numbers");
        out.push_back(*d);
      }
    } else if (const auto d = n.value<double>(); d && std::isfinite(*d)) {
      out.assign(static_cast<size_t>(*dim), *d);
    } else {
      fail(where(n), ": component ", i, " '", key, "' must be a number or a list of numbers");
    }
    if (static_cast<int64_t>(out.size()) != *dim)
      fail(where(n), ": component ", i, " '", key, "' has ", out.size(),
           " values, expected dim = ", *dim);
    return out;
  };
  std::vector<MixtureComponent> out;
  int64_t i = 0;
  for (const auto& node : *comps) {
    const toml::table* c = node.as_table();
    if (!c) fail(where(node), ": each component must be a table");
    for (const auto& [key, v] : *c)
      if (key != "weight" && key != "mean" && key != "std" && key != "class")
        fail(where(v), ": component ", i, ": unknown key '", key.str(),
             "' (expected weight, mean, std, class)");
    MixtureComponent m;
    m.weight = (*c)["weight"].value_or(1.0);
    if (const toml::node* w = c->get("weight"); w && !(m.weight > 0 && std::isfinite(m.weight)))
      fail(where(*w), ": component ", i, " 'weight' must be a finite number > 0, got ", m.weight);
    if (!(*c)["mean"]) fail(where(node), ": component ", i, " needs 'mean'");
    m.mean = numbers(*(*c)["mean"].node(), "mean", i);
    m.std = (*c)["std"] ? numbers(*(*c)["std"].node(), "std", i) : std::vector<double>(*dim, 0.0);
    for (double sd : m.std)
      if (sd < 0) fail(where(node), ": component ", i, " 'std' must be >= 0, got ", sd);
    m.label = (*c)["class"].value_or<int64_t>(-1);
    if (const toml::node* l = c->get("class"); l && num_classes == 0)
      fail(where(*l), ": component ", i, " has 'class' but the file sets no num_classes");
    else if (l && (m.label < 0 || m.label >= num_classes))
      fail(where(*l), ": component ", i, " 'class' must be in 0..num_classes - 1 = ",
           num_classes - 1, ", got ", m.label);
    if (num_classes > 0 && !(*c)["class"])
      fail(where(node), ": component ", i, " needs 'class' (num_classes > 0)");
    out.push_back(std::move(m));
    ++i;
  }
  // the first class without a component comes within (components + 1) labels: a crafted
  // num_classes of 10^18 is refused at once, not looped over
  std::set<int64_t> labels;
  for (const auto& m : out)
    labels.insert(m.label);
  for (int64_t label = 0; label < num_classes; ++label)
    if (!labels.count(label))
      fail(path, ": class ", label, " has no component (num_classes = ", num_classes,
           " needs at least one [[component]] with class = ", label, ")");
  return GaussianMixture(tbl["name"].value_or(path), std::move(out), num_classes);
}

GaussianMixture GaussianMixture::from_spec(const std::string& spec) {
  if (spec.rfind("gmm:", 0) != 0)
    fail(
        "--model must be gmm:PRESET or gmm:FILE.toml (SiT checkpoints come with the models "
        "issue), got '",
        spec, "'");
  const std::string rest = spec.substr(4);
  if (rest.size() > 5 && rest.compare(rest.size() - 5, 5, ".toml") == 0) return from_toml(rest);
  return preset(rest);
}

}  // namespace sit::models
