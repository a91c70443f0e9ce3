import unittest

from wordkit.counts import top_words, word_count


class CountsTest(unittest.TestCase):
    def test_count_case_insensitive(self):
        self.assertEqual(word_count("The cat and the hat"), {"the": 2, "cat": 1, "and": 1, "hat": 1})

    def test_apostrophes(self):
        self.assertEqual(word_count("don't stop, don't"), {"don't": 2, "stop": 1})

    def test_top_words_ties_alphabetical(self):
        self.assertEqual(top_words("b a c b a", 2), [("a", 2), ("b", 2)])
