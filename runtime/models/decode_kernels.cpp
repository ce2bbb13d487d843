#include "models/decode_kernels.hpp"

#include <charconv>

#include "common/error.hpp"

namespace moevk::models {

namespace {

// "128x2" -> (128, 2); false on anything else.
bool parse_shape(const std::string& s, uint32_t& workgroup, uint32_t& rows) {
  const size_t x = s.find('x');
  if (x == std::string::npos || x == 0 || x + 1 == s.size()) return false;
  auto number = [](const char* b, const char* e, uint32_t& out) {
    auto [p, ec] = std::from_chars(b, e, out);
    return ec == std::errc() && p == e && out > 0;
  };
  return number(s.data(), s.data() + x, workgroup) && number(s.data() + x + 1, s.data() + s.size(), rows);
}

}  // namespace

DecodeKernelShapes DecodeKernelShapes::parse(const std::string& text, const std::string& what) {
  DecodeKernelShapes shapes;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(begin, end - begin);
    begin = end + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const std::string key = item.substr(0, eq);
    uint32_t wg = 0, rows = 0;
    const bool shape_ok = eq != std::string::npos && parse_shape(item.substr(eq + 1), wg, rows);
    if (shape_ok && key == "experts") {
      shapes.experts_workgroup = wg;
      shapes.experts_rows = rows;
    } else if (shape_ok && key == "down") {
      shapes.down_workgroup = wg;
      shapes.down_rows = rows;
    } else if (shape_ok && key == "mv") {
      shapes.mv_workgroup = wg;
      shapes.mv_rows = rows;
    } else {
      fail(MOEVK_ERROR_INVALID_ARGUMENT, what + ": '" + item +
                                             "' is not experts=, down= or mv=WORKGROUPxROWS (e.g. "
                                             "experts=128x2,down=32x4,mv=256x4)");
    }
  }
  return shapes;
}

DecodeKernelShapes DecodeKernelShapes::overridden_by(const DecodeKernelShapes& over) const {
  DecodeKernelShapes s = *this;
  if (over.experts_workgroup) s.experts_workgroup = over.experts_workgroup, s.experts_rows = over.experts_rows;
  if (over.down_workgroup) s.down_workgroup = over.down_workgroup, s.down_rows = over.down_rows;
  if (over.mv_workgroup) s.mv_workgroup = over.mv_workgroup, s.mv_rows = over.mv_rows;
  return s;
}

ops::MatMulOptions DecodeKernelShapes::matmul_options() const {
  ops::MatMulOptions o;
  if (mv_workgroup) o.decode_workgroup = mv_workgroup, o.decode_rows = mv_rows;
  return o;
}

ops::MoeExpertsOptions DecodeKernelShapes::experts_options() const {
  ops::MoeExpertsOptions o;
  if (experts_workgroup) o.decode_workgroup = experts_workgroup, o.decode_rows = experts_rows;
  if (down_workgroup) o.down_workgroup = down_workgroup, o.down_rows = down_rows;
  return o;
}

std::string DecodeKernelShapes::effective() const {
  const ops::MoeExpertsOptions e = experts_options();
  const ops::MatMulOptions m = matmul_options();
  return "experts=" + std::to_string(e.decode_workgroup) + "x" + std::to_string(e.decode_rows) +
         (e.down_workgroup ? ",down=" + std::to_string(e.down_workgroup) + "x" + std::to_string(e.down_rows) : "") +
         ",mv=" + std::to_string(m.decode_workgroup) + "x" + std::to_string(m.decode_rows);
}

}  // namespace moevk::models
