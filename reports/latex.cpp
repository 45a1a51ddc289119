#include "reports/latex.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace sit::reports {
namespace {

constexpr double kTabcolsep = 4.0;  // pt, each side of a column
constexpr double kSlack = 4.0;      // pt kept free of the text width
constexpr double kMinParagraph = 56.0;

/// Width of one character of \footnotesize cmr, rounded up (measured: lower case 4.17 pt
/// on average, upper case 6.08, digits 4.0).
double char_width(unsigned char c) {
  if (std::isupper(c)) return 6.3;
  if (c == ' ') return 2.9;
  if (c == '.' || c == ',' || c == ':' || c == ';' || c == '\'' || c == '!' || c == 'i' ||
      c == 'l' || c == '|')
    return 2.6;
  if (c == 'm' || c == 'w') return 6.8;
  if (c >= 0x80) return 2.2;  // a UTF-8 byte: ~6.5 pt per 2-3 byte character
  return 4.4;
}

/// The widest unbreakable word of a cell (a paragraph column cannot be narrower).
double widest_word(const std::string& latex) {
  double widest = 0;
  size_t start = 0;
  while (start <= latex.size()) {
    size_t end = latex.find(' ', start);
    if (end == std::string::npos) end = latex.size();
    widest = std::max(widest, latex_text_width(latex.substr(start, end - start)));
    start = end + 1;
  }
  return widest;
}

std::string pt(double w) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0fpt", std::ceil(w));
  return buf;
}

/// A header cell broken into lines (a nested tabular) so that none is wider than `width`.
std::string wrapped_header(const std::string& latex, double width, char align) {
  if (latex_text_width(latex) <= width) return latex;
  std::vector<std::string> lines = {""};
  size_t start = 0;
  while (start <= latex.size()) {
    size_t end = latex.find(' ', start);
    if (end == std::string::npos) end = latex.size();
    const std::string word = latex.substr(start, end - start);
    const std::string joined = lines.back().empty() ? word : lines.back() + " " + word;
    if (!lines.back().empty() && latex_text_width(joined) > width)
      lines.push_back(word);
    else
      lines.back() = joined;
    start = end + 1;
  }
  if (lines.size() == 1) return latex;
  std::string s = std::string("\\begin{tabular}[b]{@{}") + (align == 'r' ? 'r' : align == 'c' ? 'c' : 'l') + "@{}}";
  for (size_t i = 0; i < lines.size(); ++i)
    s += (i ? "\\\\ " : "") + lines[i];
  return s + "\\end{tabular}";
}

std::string row_line(const std::vector<std::string>& cells, const std::vector<size_t>& cols) {
  std::string s;
  for (size_t i = 0; i < cols.size(); ++i)
    s += (i ? " & " : "") + cells[cols[i]];
  return s + " \\\\\n";
}

/// One longtable of the columns `cols`; `width` is each column's paragraph width or 0.
std::string longtable(const LatexTable& t, const std::vector<size_t>& cols,
                      const std::vector<double>& width, const std::vector<std::string>& header,
                      const std::string& caption, bool group_header) {
  std::string spec;
  for (size_t c : cols) {
    const char a = t.align[c];
    if (a == 'p' && width[c] > 0)
      spec += ">{\\raggedright\\arraybackslash}p{" + pt(width[c]) + "}";
    else
      spec += a == 'p' ? 'l' : a;
  }
  std::string head = "\\toprule\n" + (group_header ? t.group_header : "") +
                     row_line(header, cols) + "\\midrule\n";
  std::string s = "\\begin{longtable}{@{}" + spec + "@{}}\n";
  if (!caption.empty()) s += "\\caption{" + caption + "}\\\\\n";
  s += head + "\\endfirsthead\n";
  if (!caption.empty()) s += "\\caption[]{(continued)}\\\\\n";
  s += head + "\\endhead\n\\bottomrule\n\\endlastfoot\n";
  for (const auto& r : t.rows)
    s += row_line(r, cols);
  return s + "\\end{longtable}\n";
}

}  // namespace

double latex_text_width(const std::string& s) {
  double w = 0;
  bool math = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '$') {
      math = !math;
      continue;
    }
    if (c == '{' || c == '}') continue;
    if (c == '\\') {
      size_t j = i + 1;
      while (j < s.size() && std::isalpha(static_cast<unsigned char>(s[j])))
        ++j;
      const std::string name = s.substr(i + 1, j - i - 1);
      if (name.empty()) {  // "\_", "\&", "\\": one character
        w += j < s.size() ? 5.0 : 0.0;
        i = j;
      } else {
        // text-producing commands (\Delta, \downarrow, \textasciitilde, \times) print one
        // symbol; \textbf and friends only wrap their argument
        if (name.rfind("text", 0) != 0 || name.size() > 6) w += 7.5;
        if (name == "textbf" || name == "textit" || name == "emph") w -= 7.5;
        i = j - 1;
      }
      continue;
    }
    w += math ? 5.0 : char_width(c);
  }
  return w * 1.06;  // bold cells and kerning
}

std::string render_latex(const LatexTable& t) {
  const size_t n = t.header.size();
  if (n == 0) return "";
  // Each column's width with its header on one line (full), with the header wrapped onto
  // lines down to its widest word (compact), and the narrowest it may get (a paragraph
  // column: its widest word, at least kMinParagraph; others: compact).
  std::vector<double> full(n, 0), compact(n, 0), narrowest(n, 0);
  for (size_t c = 0; c < n; ++c) {
    double data = 0, words = 0;
    for (const auto& r : t.rows) {
      data = std::max(data, latex_text_width(r[c]));
      words = std::max(words, widest_word(r[c]));
    }
    full[c] = std::max(data, latex_text_width(t.header[c]));
    compact[c] = std::max(data, widest_word(t.header[c]));
    narrowest[c] = t.align[c] == 'p'
                       ? std::max({words, widest_word(t.header[c]), std::min(compact[c], kMinParagraph)})
                       : compact[c];
  }
  auto total = [&](const std::vector<size_t>& cols, const std::vector<double>& w) {
    double s = 0;
    for (size_t c : cols)
      s += w[c] + 2 * kTabcolsep;
    return s - 2 * kTabcolsep;  // @{} at both ends
  };
  std::vector<size_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  // Portrait with one-line headers, else turned with one-line headers, else turned with
  // headers wrapped and the widest paragraph columns cut to a common width (no narrower
  // than their narrowest), else split.
  bool landscape = false;
  std::vector<double> width(n, 0);  // paragraph widths (0: natural, one line)
  std::vector<double> fitted = full;
  bool wrap_headers = false;
  std::vector<std::vector<size_t>> parts = {all};
  const double room = kLandscapeWidth - kSlack;
  if (total(all, full) > kPortraitWidth - kSlack) landscape = true;
  if (landscape && total(all, full) > room) {
    wrap_headers = true;
    // the common cap L of the paragraph columns, by bisection: the largest that fits
    auto capped = [&](double cap) {
      std::vector<double> w = compact;
      for (size_t c = 0; c < n; ++c)
        if (t.align[c] == 'p') w[c] = std::max(narrowest[c], std::min(compact[c], cap));
      return w;
    };
    double lo = 0, hi = *std::max_element(compact.begin(), compact.end());
    for (int it = 0; it < 60; ++it) {
      const double mid = (lo + hi) / 2;
      (total(all, capped(mid)) > room ? hi : lo) = mid;
    }
    fitted = capped(lo);
    for (size_t c = 0; c < n; ++c)
      if (t.align[c] == 'p' && fitted[c] < full[c]) width[c] = fitted[c];
    if (total(all, fitted) > room) {
      // split: the key columns in every part, the others in order while they fit
      std::vector<size_t> keys;
      for (size_t c = 0; c < std::min<size_t>(t.key_columns, n); ++c)
        keys.push_back(c);
      parts.clear();
      std::vector<size_t> part = keys;
      for (size_t c = keys.size(); c < n; ++c) {
        std::vector<size_t> trial = part;
        trial.push_back(c);
        if (total(trial, fitted) > room && part.size() > keys.size()) {
          parts.push_back(part);
          part = keys;
        }
        part.push_back(c);
      }
      parts.push_back(part);
    }
  }
  std::vector<std::string> header = t.header;
  if (wrap_headers)
    for (size_t c = 0; c < n; ++c)
      header[c] = wrapped_header(t.header[c], fitted[c] + 0.5, t.align[c]);
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string caption = t.caption;
    if (parts.size() > 1)
      caption += (caption.empty() ? "" : " ") + std::string("(part ") + std::to_string(i + 1) +
                 " of " + std::to_string(parts.size()) + ")";
    out += longtable(t, parts[i], width, header, caption, parts.size() == 1);
  }
  out = "\\begingroup\n\\footnotesize\n\\setlength{\\tabcolsep}{" + pt(kTabcolsep) + "}\n" + out +
        "\\endgroup\n";
  if (landscape) out = "\\begin{landscape}\n" + out + "\\end{landscape}\n";
  return out;
}

}  // namespace sit::reports
