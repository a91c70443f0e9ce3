import unittest

from wordkit._words import sentences, words


class WordsTest(unittest.TestCase):
    def test_words_keep_apostrophes_and_digits(self):
        self.assertEqual(words("Don't stop: 2 times!"), ["Don't", "stop", "2", "times"])

    def test_sentences_end_with_any_terminator(self):
        self.assertEqual(sentences("Hi! How are you? Fine. Thanks."), ["Hi!", "How are you?", "Fine.", "Thanks."])
