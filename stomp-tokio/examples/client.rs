//! Subscribe, publish with a receipt, receive, disconnect:
//! `cargo run -p stomp-tokio --example client -- 127.0.0.1:61613`.
use stomp_tokio::{AckMode, Client, Error, SendFrame};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let address = std::env::args().nth(1);
    let client = Client::builder(address.as_deref().unwrap_or("127.0.0.1:61613"))
        .login("guest", "guest")
        .connect()
        .await?;
    // Resolves once the server has confirmed the subscription.
    let mut news = client.subscribe("/topic/news", AckMode::Auto).await?;
    // Resolves at the server's RECEIPT.
    client
        .send_with_receipt(
            SendFrame::new("/topic/news", "hello").header("content-type", "text/plain"),
        )
        .await?;
    if let Some(message) = news.next().await {
        println!("received {:?}", String::from_utf8_lossy(message.body()));
    }
    client.disconnect().await
}
