package stats

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSummarize(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name          string
		in            []float64
		n             int
		min, med, max float64
	}{
		{"odd count, unsorted", []float64{3, 1, 2}, 3, 1, 2, 3},
		{"even count: mean of the middle two", []float64{4, 1, 3, 2}, 4, 1, 2.5, 4},
		{"one value", []float64{7}, 1, 7, 7, 7},
		{"NaN and Inf ignored", []float64{nan, 5, inf, 1, math.Inf(-1)}, 2, 1, 3, 5},
		{"negative values", []float64{-2, -8, 0}, 3, -8, -2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(tt.in)
			assert.Equal(t, Summary{tt.n, tt.min, tt.med, tt.max}, s)
		})
	}
}

func TestSummarizeNothing(t *testing.T) {
	for _, in := range [][]float64{nil, {}, {math.NaN(), math.Inf(1)}} {
		s := Summarize(in)
		assert.Equal(t, 0, s.N)
		assert.True(t, math.IsNaN(s.Min) && math.IsNaN(s.Med) && math.IsNaN(s.Max), "%v", s)
	}
}

func TestMedian(t *testing.T) {
	assert.True(t, math.IsNaN(Median(nil)))
	assert.Equal(t, 5.0, Median([]float64{5}))
	assert.Equal(t, 1.5, Median([]float64{1, 2}))
	assert.Equal(t, 2.0, Median([]float64{1, 2, 10}))
	assert.Equal(t, 6.0, Median([]float64{1, 2, 10, 11}))
}

func TestSummaryFormat(t *testing.T) {
	tests := []struct {
		name string
		s    Summary
		unit string
		prec int
		want string
	}{
		{"none", Summarize(nil), "×", 1, "n/a"},
		{"one value: no range", Summary{1, 4.25, 4.25, 4.25}, "×", 1, "4.2×"},
		{"range with unit after the median", Summary{3, 106.25, 110, 111.04}, "×", 1, "110.0× (106.2–111.0)"},
		{"thousands, no unit", Summary{3, 11441, 12183.4, 12319}, "", 0, "12,183 (11,441–12,319)"},
		{"percent", Summary{2, 85, 89.44, 100}, "%", 1, "89.4% (85.0–100.0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.s.Format(tt.unit, tt.prec))
		})
	}
}

func TestNum(t *testing.T) {
	tests := []struct {
		x    float64
		prec int
		want string
	}{
		{0, 0, "0"},
		{999, 0, "999"},
		{1000, 0, "1,000"},
		{1234567.891, 2, "1,234,567.89"},
		{-1234.5, 1, "-1,234.5"},
		{-999, 0, "-999"},
		{100000, 0, "100,000"},
		{0.0456, 3, "0.046"},
		{math.NaN(), 2, "n/a"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Num(tt.x, tt.prec), "Num(%v, %d)", tt.x, tt.prec)
	}
}

func TestPlain(t *testing.T) {
	assert.Equal(t, "NaN", Plain(math.NaN()))
	assert.Equal(t, "NaN", Plain(math.Inf(-1)))
	assert.Equal(t, "1.235e+04", Plain(12346))
	assert.Equal(t, "110", Plain(110))
	assert.Equal(t, "6.048", Plain(6.04812))
}

func TestRatio(t *testing.T) {
	tests := []struct {
		a, b float64
		want string
	}{
		{12183, 10594, "1.15×"},
		{1, 3, "0.33×"},
		{25000, 10, "2,500.00×"},
		{1, 0, "n/a"},
		{math.NaN(), 1, "n/a"},
		{1, math.NaN(), "n/a"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Ratio(tt.a, tt.b), "Ratio(%v, %v)", tt.a, tt.b)
	}
}
