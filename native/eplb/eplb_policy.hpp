// The EPLB rules' ABI: what a generated rule may call. The four rules a candidate defines
// are plain functions of doubles (see eplb_pipeline.hpp for what each one decides);
// policyforge compiles them against this header alone to audit them, and inside
// eplb_template.cpp to run them.
#pragma once
#include <algorithm>
#include <cmath>

static inline double pf_div(double a, double b) { return b == 0 ? 0 : a / b; }
static inline double pf_min(double a, double b) { return a < b ? a : b; }
static inline double pf_max(double a, double b) { return a > b ? a : b; }
static inline double pf_log(double a) { return std::log1p(std::fabs(a)); }
