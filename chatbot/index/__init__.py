"""Index: embed and BM25-index the documents' units into a store (FAISS files or Milvus), fresh as the folder changes.
May import: chatbot.documents, chatbot.config, chatbot.errors."""
