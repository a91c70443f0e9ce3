import unittest

from wordkit.stats import reading_time, syllable_count


class StatsTest(unittest.TestCase):
    def test_reading_time_rounds_up(self):
        self.assertEqual(reading_time("word " * 200), 60)
        self.assertEqual(reading_time("one two three", wpm=120), 2)

    def test_no_words(self):
        self.assertEqual(reading_time("  ...  "), 0)

    def test_syllables(self):
        self.assertEqual(syllable_count("hello world"), 3)
        self.assertEqual(syllable_count("make a table"), 4)
