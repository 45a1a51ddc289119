#pragma once
/// LaTeX tables that fit the page: every table sit-eval writes (the long and pivot tables,
/// the paper layouts) goes through render_latex, which sizes the columns from their text in
/// \footnotesize, turns the page (pdflscape) when the table is wider than the portrait text
/// width, wraps paragraph columns, and as a last step splits the value columns into
/// several tables that repeat the key columns. Tables are longtables: long ones break
/// across pages with the header repeated. \resizebox is never used.
///
/// The page is LaTeX's standard article (10 pt): 345 pt text width, 550 pt when turned.
/// Packages needed: kLatexPackages.

#include <string>
#include <vector>

namespace sit::reports {

/// \usepackage{...} list every table needs.
inline constexpr const char* kLatexPackages = "booktabs,longtable,pdflscape,array";
/// Text widths the tables are fitted to (pt): article 10 pt, portrait and turned.
inline constexpr double kPortraitWidth = 345.0;
inline constexpr double kLandscapeWidth = 550.0;

struct LatexTable {
  std::string caption;  ///< LaTeX (escaped by the caller); "" for none
  /// Header cells and rows: LaTeX (escaped by the caller); rows as wide as the header.
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  /// Per column: 'l', 'c', 'r', or 'p' (text that may wrap, left-aligned).
  std::string align;
  /// Leading columns repeated in every part when the table must be split (the row names).
  int key_columns = 1;
  /// LaTeX lines above the header (e.g. \multicolumn groups with \cmidrule); dropped when the
  /// table is split, since the groups no longer line up.
  std::string group_header;
};

/// The table as LaTeX (see the file comment). Errors: none; an empty table gives "".
std::string render_latex(const LatexTable& table);

/// Estimated width in pt of LaTeX text set in \footnotesize (computer modern, 8 pt), on
/// the generous side: commands count as their output ("\_" one character, "$\Delta$" one
/// symbol), braces nothing.
double latex_text_width(const std::string& latex);

}  // namespace sit::reports
