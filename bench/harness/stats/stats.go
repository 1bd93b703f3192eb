// Package stats summarizes the measurements of several runs (minimum,
// median, maximum) and formats numbers the way the benchmark report prints
// them.
package stats

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Summary is the minimum, median and maximum of N finite values; with N == 0
// all three are NaN.
type Summary struct {
	N             int
	Min, Med, Max float64
}

// Summarize ignores NaN and infinite values (runs where a quotient had no
// denominator).
func Summarize(xs []float64) Summary {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Summary{Min: math.NaN(), Med: math.NaN(), Max: math.NaN()}
	}
	sort.Float64s(v)
	return Summary{len(v), v[0], Median(v), v[len(v)-1]}
}

// Median of sorted values: the middle one, or the mean of the two middle
// ones; NaN for none.
func Median(sorted []float64) float64 {
	n := len(sorted)
	switch {
	case n == 0:
		return math.NaN()
	case n%2 == 0:
		return (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return sorted[n/2]
}

// Format prints "med (min–max)" with unit after the median, just the median
// for one value, "n/a" for none.
func (s Summary) Format(unit string, prec int) string {
	if s.N == 0 {
		return "n/a"
	}
	if s.N == 1 {
		return Num(s.Med, prec) + unit
	}
	return fmt.Sprintf("%s%s (%s–%s)", Num(s.Med, prec), unit, Num(s.Min, prec), Num(s.Max, prec))
}

// Num prints x with prec decimals and thousands separators; "n/a" for NaN.
func Num(x float64, prec int) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	s := fmt.Sprintf("%.*f", prec, x)
	intPart, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(intPart, "-")
	intPart = strings.TrimPrefix(intPart, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return b.String()
}

// Plain prints x for gnuplot: 4 significant digits, "NaN" for a missing value.
func Plain(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "NaN"
	}
	return fmt.Sprintf("%.4g", x)
}

// Ratio prints a/b as "1.23×", or "n/a" when either is missing or b is 0.
func Ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "n/a"
	}
	return Num(a/b, 2) + "×"
}
