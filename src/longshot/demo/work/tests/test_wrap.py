import unittest

from wordkit.wrap import wrap


class WrapTest(unittest.TestCase):
    def test_greedy(self):
        self.assertEqual(wrap("the quick brown fox", 10), ["the quick", "brown fox"])

    def test_long_word_alone(self):
        self.assertEqual(wrap("a supercalifragilistic b", 5), ["a", "supercalifragilistic", "b"])

    def test_bad_width(self):
        with self.assertRaises(ValueError):
            wrap("x", 0)
